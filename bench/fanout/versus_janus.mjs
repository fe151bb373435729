#!/usr/bin/env node
// fc25's listener leg against Janus's Streaming plugin, in one run with one listener client (libdatachannel through
// npm node-datachannel; bench/fanout/dc_listeners.mjs). For each audience size: one stream, listeners joining at
// --join-rate a second, then over a steady --window: the server's CPU above its base with the stream but no
// listener, its threads and memory per listener, packets lost (gaps in each listener's sequence numbers), the time
// from a listener's offer to its first packet, and the spread between the first and the last listener receiving
// the same packet (p50/p99 over the window's packets; measured at the clients, so it includes their own delay).
//
//   scripts/netns-run.sh node bench/fanout/versus_janus.mjs [--listeners 50,100,200,300] [--servers fc25,janus]
//                                                         [--window 11] [--per-process 100] [--join-rate 10]
//
// fc25's stream is a live broadcaster (fc25-send, speech, denoised); Janus's is Opus RTP from gst-launch-1.0 into
// its mountpoint (Janus 1.1.2 from Debian, `event_loops = 2`: what it does with a packet does not depend on the
// audio). Must run inside the test network namespace (ICE needs an interface other than lo).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { requireTestNetwork } from '../../tests/support/browser.mjs';
import { Client, makeFriends } from '../../tests/support/client.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import { enginePath, flag, machine, measureCpu, modelDir, opt, rssKb, sleep, spawnSend, speechWav, threads, waitFor } from '../support.mjs';

const LISTENERS = String(opt('listeners', '50,100,200,300')).split(',').map(Number);
const SERVERS = String(opt('servers', 'fc25,janus')).split(',');
const WINDOW = Number(opt('window', 11));
const PER_PROCESS = Number(opt('per-process', 100));
const JOIN_RATE = Number(opt('join-rate', 10));
const NICE = Number(opt('nice', 19));
const JSON_OUT = flag('json');
// The listener clients in a network namespace of their own, reaching the server over the veth pair: 10.203.0.2
// moves there, the server keeps 10.203.0.1 (and serves HTTP on it).
const SPLIT = flag('split-netns');
const serverAddress = SPLIT ? '10.203.0.1' : '127.0.0.1';
let clientNs = null;  // the pid whose network namespace the clients join
const password = 'bench password';
const log = (...a) => { if (!JSON_OUT) console.error(...a); };
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null);
const worker = path.join(path.dirname(new URL(import.meta.url).pathname), 'dc_listeners.mjs');

const cpuOver = async (pid, ms) => (await measureCpu([pid], ms))[0];

// Users cast0 and lis0..lis{n-1}, every listener a friend of cast0, in a data directory reused by every fc25 run.
async function prepareUsers(dataDir, n) {
  const server = await startServer({ dataDir, bind: serverAddress });
  const cast = new Client(server.url);
  await cast.register('cast0', password);
  for (let start = 0; start < n; start += 10) {
    await Promise.all(Array.from({ length: Math.min(10, n - start) }, async (_, k) => {
      const c = new Client(server.url);
      await c.register(`lis${start + k}`, password);
      await makeFriends(cast, c);
    }));
  }
  await server.stop();
}

// The listener processes for `m` listeners; resolves to their reports.
function listen(m, target, startAt) {
  const joinEveryMs = 1000 / JOIN_RATE;
  const ramp = m * joinEveryMs;
  const windowFrom = startAt + ramp + 5000;
  const stopAt = windowFrom + WINDOW * 1000 + 2000;
  const procs = [];
  for (let first = 0; first < m; first += PER_PROCESS) {
    const n = Math.min(PER_PROCESS, m - first);
    // Joins interleaved across processes on one ramp: process k's i-th listener joins at (i * procs + k).
    const nProcs = Math.ceil(m / PER_PROCESS);
    const k = first / PER_PROCESS;
    const cfg = { ...target, startAt: startAt + k * joinEveryMs, joinEveryMs: joinEveryMs * nProcs, stopAt,
      window: [windowFrom, windowFrom + WINDOW * 1000] };
    if (target.target === 'fc25') cfg.users = Array.from({ length: n }, (_, i) => `lis${first + i}`);
    else cfg.count = n;
    const argv = ['nice', '-n', String(NICE), process.execPath, worker, JSON.stringify(cfg)];
    const p = clientNs ? spawn('nsenter', ['-t', String(clientNs), '-n', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => {
      err += d;
      if (process.env.FC25_BENCH_DEBUG) process.stderr.write(d);
    });
    procs.push(new Promise((resolve) => p.on('close', () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        resolve({ listeners: Array.from({ length: n }, () => ({ error: `client process failed: ${err.slice(-300)}` })), spread: [] });
      }
    })));
  }
  return { window: [windowFrom, windowFrom + WINDOW * 1000], reports: Promise.all(procs) };
}

// Measures one server (pid) while `m` listeners of `target` join and listen.
async function measure(pid, m, target, logs = () => '') {
  await sleep(1000);
  const base = await cpuOver(pid, 3000);
  const [baseThreads, baseRss] = [threads(pid), rssKb(pid)];
  // Every fc25 client logs its users in first (a deliberately slow password check each), then all join on one ramp.
  const loginS = target.target === 'fc25' ? 5 + 0.12 * m : 1;
  const run = listen(m, target, Date.now() + loginS * 1000);
  await sleep(run.window[0] - Date.now());
  const logFrom = logs().length;
  const cpu = await cpuOver(pid, WINDOW * 1000);
  // fc25's own figure: from a packet's audio reaching ingest to its copy for the last listener handed to the
  // kernel, from its 5-second reports inside the window.
  const steady = [...logs().slice(logFrom).matchAll(/fanout session=\d+ listeners=\d+ packets=\d+ latency p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms/g)]
    .map((x) => x.slice(1).map(Number));
  const [th, rss] = [threads(pid), rssKb(pid)];
  const reports = await run.reports;
  const ls = reports.flatMap((r) => r.listeners);
  const ok = ls.filter((l) => !l.error);
  // Per packet: first and last arrival over all processes (one machine: one clock).
  const spreads = [];
  const byKey = new Map();
  for (const r of reports) {
    for (const [key, first, last, n] of r.spread) {
      const s = byKey.get(key);
      if (s) {
        s[0] = Math.min(s[0], first);
        s[1] = Math.max(s[1], last);
        s[2] += n;
      } else byKey.set(key, [first, last, n]);
    }
  }
  // Only packets every connected listener received count: a packet some did not get is loss, counted as such.
  // A packet of the window some listener did not get is loss, whether or not its sequence numbers show a gap (a
  // listener that stops hearing altogether shows none).
  let missing = 0;
  let ambiguous = 0;
  // Packets first heard well inside the window only: one near its edges may be inside for some listeners only.
  // Two packets alike (the encoder's silence) cannot be told apart: heard more often than there are listeners,
  // such a key is left out of both counts.
  for (const [first, last, n] of byKey.values()) {
    if (first < run.window[0] + 200 || first > run.window[1] - 200) continue;
    if (n > ok.length) {
      ambiguous += 1;
      continue;
    }
    if (n >= ok.length) spreads.push(last - first);
    else missing += ok.length - n;
  }
  spreads.sort((a, b) => a - b);
  const lates = ok.map((l) => l.late_ms).sort((a, b) => a - b);
  const firsts = ok.map((l) => l.first_ms).filter((x) => x !== null).sort((a, b) => a - b);
  return {
    listeners: m,
    failed: ls.length - ok.length,
    failure_example: ls.find((l) => l.error)?.error,
    silent: ok.filter((l) => !l.packets).length,
    packets: ok.reduce((a, l) => a + l.packets, 0),
    lost: ok.reduce((a, l) => a + l.gaps, 0),
    window_missing: missing,
    window_ambiguous: ambiguous,
    cpu_pct: cpu,
    cpu_base_pct: base,
    cpu_per_listener_pct: (cpu - base) / m,
    threads: th,
    threads_base: baseThreads,
    threads_per_listener: (th - baseThreads) / m,
    rss_mb: rss / 1024,
    rss_per_listener_kb: (rss - baseRss) / m,
    first_audio_ms_p50: pct(firsts, 50),
    first_audio_ms_max: firsts.at(-1) ?? null,
    join_late_ms_max: lates.at(-1) ?? null,
    server_latency_p50_ms: steady.length ? Math.max(...steady.map((x) => x[0])) : null,
    server_latency_p99_ms: steady.length ? Math.max(...steady.map((x) => x[1])) : null,
    server_latency_max_ms: steady.length ? Math.max(...steady.map((x) => x[2])) : null,
    spread_packets: spreads.length,
    spread_ms_p50: pct(spreads, 50),
    spread_ms_p99: pct(spreads, 99),
  };
}

async function runFc25(dataDir, m) {
  const server = await startServer({ dataDir, bind: serverAddress, env: { FC25_MODEL_DIR: modelDir } });
  engine = enginePath(server);
  const broadcast = spawnSend(server, password, ['--host', serverAddress, '--user', 'cast0', '--wav', speechWav, '--seconds', '900']);
  try {
    if (!await waitFor(() => /media connected/.test(server.logs()), 60000)) throw new Error('the broadcaster did not connect');
    return await measure(server.proc.pid, m, { target: 'fc25', url: server.url, password, stream: 'cast0' }, server.logs);
  } finally {
    broadcast.kill('SIGTERM');
    await server.stop();
  }
}

async function runJanus(m) {
  const { feedOpus, startJanus } = await import('./janus.mjs');
  const rtpPort = 20000 + Math.floor(Math.random() * 20000);
  const janus = await startJanus({ rtpPort, httpPort: rtpPort + 1, httpAddress: serverAddress, eventLoops: 2 });
  const feed = feedOpus({ port: rtpPort, seconds: 900 });
  try {
    return await measure(janus.pid, m, { target: 'janus', api: janus.api, mountpoint: 1 });
  } finally {
    feed.kill('SIGTERM');
    await janus.stop();
  }
}

// A process holding a new network namespace, 10.203.0.2's end of the veth pair moved into it; it ends with us.
async function splitNetwork() {
  const holder = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
  holder.unref();  // it must not keep this process running once the runs are done
  process.on('exit', () => holder.kill('SIGKILL'));
  const ours = fs.readlinkSync('/proc/self/ns/net');
  while (fs.readlinkSync(`/proc/${holder.pid}/ns/net`) === ours) await sleep(10);
  execFileSync('ip', ['link', 'set', 'fc25v1', 'netns', String(holder.pid)]);
  const inside = (...a) => execFileSync('nsenter', ['-t', String(holder.pid), '-n', ...a]);
  inside('ip', 'link', 'set', 'lo', 'up');
  inside('ip', 'addr', 'add', '10.203.0.2/24', 'dev', 'fc25v1');
  inside('ip', 'link', 'set', 'fc25v1', 'up');
  return holder.pid;
}

requireTestNetwork();
if (SPLIT) clientNs = await splitNetwork();
const dataDir = tempDir('fc25-bench-versus-');
if (SERVERS.includes('fc25')) {
  log(`preparing ${Math.max(...LISTENERS)} listeners`);
  await prepareUsers(dataDir, Math.max(...LISTENERS));
}
const results = [];
let engine = null;  // fc25's denoise path, set by runFc25
for (const m of LISTENERS) {
  for (const s of SERVERS) {
    log(`run: ${s}, ${m} listeners`);
    const r = { server: s, ...(s === 'fc25' ? await runFc25(dataDir, m) : await runJanus(m)) };
    results.push(r);
    log(`  ${s} ${m}: ${r.failed} failed${r.failure_example ? ` (${r.failure_example})` : ''}, ${r.silent} silent, ` +
      `lost ${r.lost} of ${r.packets + r.lost}, ${r.window_missing} missing in the window; CPU ${r.cpu_pct.toFixed(1)} % (base ${r.cpu_base_pct.toFixed(1)} %, ` +
      `${r.cpu_per_listener_pct.toFixed(3)} % per listener); threads ${r.threads} (base ${r.threads_base}); ` +
      `RSS ${r.rss_mb.toFixed(0)} MB (${r.rss_per_listener_kb.toFixed(0)} KB per listener); first audio p50 ` +
      `${r.first_audio_ms_p50?.toFixed(0)} ms max ${r.first_audio_ms_max?.toFixed(0)} ms (joins up to ` +
      `${r.join_late_ms_max} ms late); spread p50 ` +
      `${r.spread_ms_p50?.toFixed(2)} ms p99 ${r.spread_ms_p99?.toFixed(2)} ms over ${r.spread_packets} packets` +
      `${r.server_latency_p99_ms === null ? '' : `; server latency p50 ${r.server_latency_p50_ms} ms p99 ${r.server_latency_p99_ms} ms max ${r.server_latency_max_ms} ms`}`);
  }
}
const out = { machine: machine(), engine, split_netns: SPLIT, window_s: WINDOW, join_rate: JOIN_RATE, per_process: PER_PROCESS, results };
if (JSON_OUT) console.log(JSON.stringify(out, null, 1));
else log(`machine: ${machine()}${engine ? `; fc25's denoise engine: ${engine}` : ''}`);
