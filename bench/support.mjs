// What the media benchmarks share: their command-line options, the load generator and its audio, and CPU time
// of processes from /proc.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { repoRoot, sharedDir } from '../tests/support/server.mjs';

const args = process.argv.slice(2);
// The value after --name, or `def`.
export const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
export const flag = (name) => args.includes(`--${name}`);
export const sendBin = process.env.FC25_SEND || path.join(process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build'), 'tools/send/fc25-send');
export const speechWav = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
export const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const machine = () => `${os.cpus().length} x ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`;

// The denoise code a server chose, from its start-up lines: "kernels avx512, fp32 weights" (or "classic", when it
// runs without the model). Printed beside the machine, since speed differs by processor and path.
export const enginePath = (server) => {
  const logs = server.logs();
  const kernels = /kernels=(\S+)/.exec(logs)?.[1] ?? '?';
  const weights = /\((fp32|bf16) weights\)/.exec(logs)?.[1];
  return weights ? `kernels ${kernels}, ${weights} weights` : `denoiser without the model (kernels ${kernels})`;
};

// CPU time of a process (utime + stime) in 1/100 s; 0 once it is gone.
// utime + stime of a /proc stat line (the fields after the name, which may itself hold ") ").
const statTicks = (stat) => {
  const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};
export const ticks = (pid) => {
  if (!fs.existsSync(`/proc/${pid}/stat`)) return 0;
  return statTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
};
// The CPU ticks of a process's threads whose name starts with `prefix` (e.g. the denoise workers).
export const threadTicks = (pid, prefix) => {
  let sum = 0;
  for (const t of fs.existsSync(`/proc/${pid}/task`) ? fs.readdirSync(`/proc/${pid}/task`) : []) {
    let stat;
    try { stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); } catch { continue; }
    if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith(prefix)) sum += statTicks(stat);
  }
  return sum;
};

// Resolves to cond() once it holds or `ms` have passed.
export async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(100);
  return cond();
}

// CPU of `pids` over `ms`, as a percentage of one core.
export async function measureCpu(pids, ms) {
  const c0 = pids.map(ticks);
  const t0 = Date.now();
  await sleep(ms);
  const c1 = pids.map(ticks);
  const secs = (Date.now() - t0) / 1000;
  return c1.map((c, i) => (c - c0[i]) / secs);
}

// Resident memory of a process in KB, and its threads.
export const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
export const threads = (pid) => fs.readdirSync(`/proc/${pid}/task`).length;

// fc25-send against `server` as the users of `password`, at CPU priority `nice` (0: as this process). The returned
// process's `done` resolves to its report lines and error output once it exits.
export function spawnSend(server, password, extra, nice = 0) {
  const argv = [sendBin, '--port', String(server.port), '--password', password, ...extra];
  const p = nice ? spawn('nice', ['-n', String(nice), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  p.done = new Promise((r) => p.on('exit', () => r({ lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l)), err })));
  return p;
}
