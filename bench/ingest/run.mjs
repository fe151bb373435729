#!/usr/bin/env node
// Ingest load: N broadcasters from fc25-send (WebRTC, Opus from a WAV, packets as the answer asks) into one fc25 serve with
// noise removal on, for each N given. For every N: server CPU per stream (measured over the steady part, after
// every stream connected) and the denoise workers' CPU per frame, frames dropped and late, and the time from a
// decoded frame's arrival to its clean frame leaving the denoiser (per-stream p50/p99 from the server's "media
// closed" log lines: the median of the p50s and the largest p99 are reported), and the same from the arrival of
// the audio a clean frame carries, which adds the model's own delay (30 ms for DeepFilterNet3). Arrival: the RTP
// packet leaving the receive jitter buffer.
//
//   scripts/netns-run.sh node bench/ingest/run.mjs [--streams 8,16,32,48] [--seconds 20] [--ramp 3] [--packet-ms 10|20]
//                                                 [--json]
//
// Must run inside the test network namespace (ICE needs an interface other than lo); the server listens on
// 127.0.0.1 and media flows between the namespace's own veth addresses.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

import { requireTestNetwork } from '../../tests/support/browser.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import {
  enginePath, flag, machine, modelDir, opt, sendBin, sleep, speechWav as wav, threadTicks, ticks,
} from '../support.mjs';

const COUNTS = String(opt('streams', '8,16,32,48')).split(',').map(Number);
const SECONDS = Number(opt('seconds', 20));
const RAMP = Number(opt('ramp', 3));
// The broadcasters' packet length: by default what the server's answer asks for (a=ptime), as a browser sends;
// --packet-ms 10|20 sends that whatever it asks.
const PACKET_MS = opt('packet-ms', 'answer');
const JSON_OUT = flag('json');
const log = (...a) => { if (!JSON_OUT) console.error(...a); };
const hz = 100;

requireTestNetwork();
const dataDir = tempDir('fc25-bench-ingest-');
const results = [];
let engine = '?';
for (const n of COUNTS) {
  const server = await startServer({ dataDir, env: { FC25_MODEL_DIR: modelDir } });
  engine = enginePath(server);
  const sender = spawn(sendBin, ['--port', String(server.port), '--wav', wav, '--user', 'bench', '--register',
    '--streams', String(n), '--seconds', String(SECONDS), '--ramp', String(RAMP),
    ...(PACKET_MS === 'answer' ? [] : ['--packet-ms', String(PACKET_MS)])],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  sender.stdout.on('data', (d) => { out += d; });
  sender.stderr.on('data', () => {});
  const done = new Promise((r) => sender.on('exit', r));
  // Wait until every stream is connected (the server logs it), then measure the steady part.
  const t0 = Date.now();
  while ((server.logs().match(/media connected/g) || []).length < n && Date.now() - t0 < 120000) await sleep(100);
  await sleep(1000);
  const window = Math.max(2, SECONDS - RAMP - 4) * 1000;
  const workers = () => threadTicks(server.proc.pid, 'fc25-denoise');
  const [s0, c0, d0, w0] = [ticks(server.proc.pid), ticks(sender.pid), workers(), Date.now()];
  await sleep(window);
  const [s1, c1, d1, w1] = [ticks(server.proc.pid), ticks(sender.pid), workers(), Date.now()];
  const threads = fs.readdirSync(`/proc/${server.proc.pid}/task`).length;
  await done;
  await server.stop();
  const lines = server.logs().split('\n').filter((l) => l.includes('media closed'));
  const per = lines.map((l) => Object.fromEntries([...l.matchAll(/(\w+)=([\d.]+)(?:ms)?/g)].map((m) => [m[1], Number(m[2])])));
  const failures = out.split('\n').filter((l) => l.includes('"error"')).length;
  const sorted = per.map((p) => p.p50).sort((a, b) => a - b);
  const median = (v) => v.filter((x) => x !== undefined).sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? null;
  const r = {
    streams: n,
    connected: per.filter((p) => p.frames > 0).length,
    failures,
    frames: per.reduce((a, p) => a + p.frames, 0),
    dropped: per.reduce((a, p) => a + p.dropped, 0),
    late: per.reduce((a, p) => a + p.late, 0),
    latency_p50_ms: sorted[Math.floor(sorted.length / 2)] ?? null,
    latency_p99_ms: Math.max(...per.map((p) => p.p99)),
    latency_max_ms: Math.max(...per.map((p) => p.max)),
    through_p50_ms: median(per.map((p) => p.through_p50)),
    through_p99_ms: Math.max(...per.map((p) => p.through_p99)),
    server_cpu_pct: (100 * (s1 - s0)) / hz / ((w1 - w0) / 1000),
    sender_cpu_pct: (100 * (c1 - c0)) / hz / ((w1 - w0) / 1000),
    // The denoise workers' own CPU, and per frame (a stream gives 100 frames a second): what the engine costs in
    // the server, to hold against bench/denoise's BM_PacedBatch for as many streams per worker.
    denoise_cpu_pct: (100 * (d1 - d0)) / hz / ((w1 - w0) / 1000),
    server_threads: threads,
    // The packets each stream was asked for (FC25_PACKET_MS auto: 10 ms while the workers take packets as they come).
    packets_10ms: (server.logs().match(/media connected session=\d+ packets=10 ms/g) || []).length,
    packets_20ms: (server.logs().match(/media connected session=\d+ packets=20 ms/g) || []).length,
  };
  r.server_cpu_pct_per_stream = r.server_cpu_pct / n;
  r.denoise_us_per_frame = (r.denoise_cpu_pct / 100) * 1e6 / (n * 100);
  r.sustained = r.connected === n && r.failures === 0 && r.dropped === 0 && r.late === 0;
  results.push(r);
  log(`N=${n}: connected ${r.connected}, dropped ${r.dropped}, late ${r.late}, latency p50 ${r.latency_p50_ms} ms ` +
    `p99 ${r.latency_p99_ms} ms max ${r.latency_max_ms.toFixed(1)} ms, through the denoiser's delay p50 ` +
    `${r.through_p50_ms} ms p99 ${r.through_p99_ms} ms, server CPU ${r.server_cpu_pct.toFixed(0)}% ` +
    `(${r.server_cpu_pct_per_stream.toFixed(2)}% per stream; denoise workers ${r.denoise_cpu_pct.toFixed(0)}%, ` +
    `${r.denoise_us_per_frame.toFixed(0)} µs per frame), sender CPU ${r.sender_cpu_pct.toFixed(0)}%, ` +
    `asked for 10/20 ms packets ${r.packets_10ms}/${r.packets_20ms}, ` +
    `${threads} threads${r.sustained ? '' : '  NOT SUSTAINED'}`);
}
if (JSON_OUT) console.log(JSON.stringify({ machine: machine(), engine, seconds: SECONDS, ramp: RAMP, packet_ms: PACKET_MS, results }, null, 1));
else log(`machine: ${machine()}; denoise engine: ${engine}; broadcasters' packets: ${PACKET_MS === 'answer' ? 'as answered' : PACKET_MS + ' ms'}`);
