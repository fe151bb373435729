#!/usr/bin/env node
// Fan-out load: live denoised streams from fc25-send broadcasters, each heard by many fc25-send listeners (real
// WebRTC peers: ICE, DTLS-SRTP; audio packets counted as they arrive), against one fc25 serve.
//
//   1 broadcaster × M listeners, for each M in --listeners (default 1,50,100,200,500)
//   N broadcasters × 10 listeners each, for each N in --broadcasters (default 4,8,16)
//
// For every run: server CPU, threads and memory with the listeners connected (and per listener, over the same
// server with only the broadcasters), packets lost (sent by the server to a listener but never received),
// listeners that failed to join, and the latency from a packet's audio arriving at ingest to the packet leaving for
// the last listener (the shared transport: handed to the kernel; FC25_LISTENER_TRANSPORT=webrtcbin: entering each
// listener's RTP payloader), per stream p50/p99/max from the server's "fanout" log lines.
//
//   scripts/netns-run.sh node bench/fanout/run.mjs [--listeners 1,50,...] [--broadcasters 4,8] [--window 11]
//                                                 [--nice 19] [--per-process 25] [--full-listeners] [--json]
//                                                 [--server-log PREFIX]
//
// Must run inside the test network namespace (ICE needs an interface other than lo); the server listens on
// 127.0.0.1 and media flows between the namespace's own veth addresses.
import fs from 'node:fs';

import { requireTestNetwork } from '../../tests/support/browser.mjs';
import { Client, makeFriends } from '../../tests/support/client.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import { enginePath, flag, machine, measureCpu, modelDir, opt, rssKb, sendBin, sleep, spawnSend, speechWav as wav, threads, waitFor } from '../support.mjs';

const list = (s) => (s === '' || s === 'none' ? [] : String(s).split(',').map(Number));
const LISTENERS = list(opt('listeners', '1,50,100,200,500'));
const BROADCASTERS = list(opt('broadcasters', '4,8,16'));
const PER_BROADCASTER = Number(opt('per-broadcaster', 10));
const WINDOW = Number(opt('window', 11));
const JSON_OUT = flag('json');
const password = 'bench password';
const log = (...a) => { if (!JSON_OUT) console.error(...a); };
const rssMb = (pid) => rssKb(pid) / 1024;
// Datagrams the kernel dropped because a receiver's socket buffer was full (this network namespace: server and
// listener clients alike).
const udpErrors = () => {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  return Number(values[names.indexOf('RcvbufErrors')]);
};
const count = (text, re) => (text.match(re) || []).length;

// Listener clients run at the lowest CPU priority (--nice, default 19): on a machine shared with the server they
// take only what it leaves, as if they were elsewhere. What they then fail to read shows as socket-buffer drops.
const NICE = Number(opt('nice', 19));
// Listener clients count audio packets as they arrive over ICE and drop them there (fc25-send
// --count-at-transport), a third of the CPU of decrypting and jitter-buffering each; --full-listeners does all.
const FULL = flag('full-listeners');
const JOIN_RATE = Number(opt('join-rate', 10));
// Listener clients per process: one process holding hundreds of WebRTC peers slows down as a whole (every peer
// is a webrtcbin with its own threads), which would measure the load generator rather than the server.
const PER_PROCESS = Number(opt('per-process', 25));
const send = (server, extra, nice = 0) => spawnSend(server, password, extra, nice);

// Users and friendships live in one data directory reused by every run: casters cast0..cast{N-1}, listeners
// lis0..lis{M-1}, every listener a friend of every caster it will hear.
async function prepareUsers(dataDir, casters, listeners) {
  const server = await startServer({ dataDir });
  const register = async (name) => {
    const c = new Client(server.url);
    await c.register(name, password);
    return c;
  };
  const cs = [];
  for (let i = 0; i < casters; i++) cs.push(await register(`cast${i}`));
  for (let start = 0; start < listeners; start += 10) {
    const batch = [];
    for (let i = start; i < Math.min(listeners, start + 10); i++) batch.push(register(`lis${i}`));
    const ls = await Promise.all(batch);
    for (const l of ls) {
      const idx = Number(l.username.slice(3));
      for (let i = 0; i < casters; i++) if (i === 0 || idx < PER_BROADCASTER) await makeFriends(cs[i], l);
    }
    log(`  users: ${Math.min(listeners, start + 10)}/${listeners} listeners`);
  }
  await server.stop();
}

async function run(dataDir, casters, perCaster) {
  const server = await startServer({ dataDir, env: { FC25_MODEL_DIR: modelDir, FC25_LOG_LEVEL: process.env.FC25_LOG_LEVEL || 'info' } });
  engine = enginePath(server);
  const total = casters * perCaster;
  const broadcast = send(server, ['--user', casters === 1 ? 'cast0' : 'cast', '--streams', String(casters),
    '--wav', wav, '--seconds', '600', '--ramp', String(Math.min(3, casters * 0.2))]);
  // fc25-send names its streams cast0.. when there are several; with one it uses the name as given.
  if (!await waitFor(() => count(server.logs(), /media connected/g) >= casters, 60000)) {
    broadcast.kill('SIGKILL');
    await server.stop();
    throw new Error(`only ${count(server.logs(), /media connected/g)} of ${casters} broadcasters connected`);
  }
  await sleep(1000);
  const [base] = await measureCpu([server.proc.pid], 3000);
  const baseThreads = threads(server.proc.pid);
  const baseRss = rssMb(server.proc.pid);

  // Listeners join at --join-rate per second (a stampede of joins is its own subject; here the steady fan-out is),
  // and listen long enough to cover the measuring window.
  const ramp = Math.max(1, total / JOIN_RATE);
  const seconds = ramp + 15 + WINDOW;
  // Every client logs its users in first (a deliberately slow password check each), then all begin together.
  const loginS = 5 + 0.12 * total;
  const t0 = Date.now() + loginS * 1000;
  const listeners = [];
  for (let i = 0; i < casters; i++) {
    // Each audience is spread over client processes of at most --per-process listeners, their joins interleaved
    // on one ramp.
    for (let first = 0; first < perCaster; first += PER_PROCESS) {
      const n = Math.min(PER_PROCESS, perCaster - first);
      listeners.push(send(server, ['--listen', `cast${i}`, '--user', 'lis', '--first', String(first), '--streams', String(n),
        '--seconds', String(seconds), '--ramp', String(ramp), '--ramp-of', String(perCaster), '--start-at', String(t0),
        ...(FULL ? [] : ['--count-at-transport'])], NICE));
    }
  }
  let exited = 0;
  for (const l of listeners) l.done.then(() => { exited += 1; });
  await waitFor(() => count(server.logs(), /listener connected/g) >= total || exited === listeners.length, (loginS + ramp + 60) * 1000);
  const connected = count(server.logs(), /listener connected/g);
  const joinS = (Date.now() - t0) / 1000;
  await sleep(1000);
  const pids = [server.proc.pid, ...listeners.map((l) => l.pid), broadcast.pid];
  const [logFrom, udp0] = [server.logs().length, udpErrors()];
  const cpu = await measureCpu(pids, WINDOW * 1000);
  const [logTo, udp1] = [server.logs().length, udpErrors()];
  const threadsNow = threads(server.proc.pid);
  const rss = rssMb(server.proc.pid);
  const results = await Promise.all(listeners.map((l) => l.done));
  broadcast.kill('SIGTERM');
  await waitFor(() => count(server.logs(), /fanout closed/g) >= casters, 20000);
  await server.stop();

  const logs = server.logs();
  if (opt('server-log')) fs.writeFileSync(`${opt('server-log')}-${casters}x${total}.log`, logs);
  const sentBy = new Map([...logs.matchAll(/listener left session=\d+ listener=(\w+) \((?:[^;]+); (\d+) packets sent, (\d+) dropped/g)]
    .map((m) => [m[1], { sent: Number(m[2]), dropped: Number(m[3]) }]));
  for (const r of results) if (!r.lines.length) throw new Error(`fc25-send --listen failed: ${r.err}`);
  const lines = results.flatMap((r) => r.lines).filter((l) => !l.summary);
  const failed = lines.filter((l) => l.error);
  let sent = 0;
  let lost = 0;
  let dropped = 0;
  let worst = 1;
  for (const l of lines.filter((x) => !x.error)) {
    const s = sentBy.get(l.listen_id) ?? { sent: 0, dropped: 0 };
    sent += s.sent;
    dropped += s.dropped;
    lost += Math.max(0, s.sent - l.packets_received);
    if (s.sent > 0) worst = Math.min(worst, l.packets_received / s.sent);
  }
  // Steady state: the server's 5-second reports logged inside the measuring window.
  const steady = [...logs.slice(logFrom, logTo).matchAll(/fanout session=\d+ listeners=\d+ packets=(\d+) latency p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms/g)]
    .map((m) => ({ packets: Number(m[1]), p50: Number(m[2]), p99: Number(m[3]), max: Number(m[4]) }));
  const steadyP50 = steady.map((f) => f.p50).sort((a, b) => a - b);
  const fan = [...logs.matchAll(/fanout closed session=\d+ packets=(\d+) latency p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms/g)]
    .map((m) => ({ packets: Number(m[1]), p50: Number(m[2]), p99: Number(m[3]), max: Number(m[4]) }));
  const p50s = fan.map((f) => f.p50).sort((a, b) => a - b);
  const first = lines.filter((l) => !l.error).map((l) => l.first_packet_ms).sort((a, b) => a - b);
  const r = {
    broadcasters: casters,
    listeners: total,
    connected,
    failed: failed.length,
    failure_example: failed[0]?.error,
    join_s: joinS,
    first_audio_ms_p50: first[Math.floor(first.length / 2)] ?? null,
    first_audio_ms_max: first.at(-1) ?? null,
    packets_sent: sent,
    packets_lost: lost,
    dropped_by_server: dropped,
    udp_receive_buffer_errors: udp1 - udp0,
    loss_pct: sent ? (100 * lost) / sent : null,
    worst_listener_pct: 100 * worst,
    steady_latency_p50_ms: steadyP50[Math.floor(steadyP50.length / 2)] ?? null,
    steady_latency_p99_ms: steady.length ? Math.max(...steady.map((f) => f.p99)) : null,
    steady_latency_max_ms: steady.length ? Math.max(...steady.map((f) => f.max)) : null,
    latency_p50_ms: p50s[Math.floor(p50s.length / 2)] ?? null,
    latency_p99_ms: fan.length ? Math.max(...fan.map((f) => f.p99)) : null,
    latency_max_ms: fan.length ? Math.max(...fan.map((f) => f.max)) : null,
    server_cpu_pct: cpu[0],
    server_cpu_base_pct: base,
    server_cpu_per_listener_pct: (cpu[0] - base) / total,
    listener_clients_cpu_pct: cpu.slice(1, 1 + listeners.length).reduce((a, b) => a + b, 0),
    listener_processes: listeners.length,
    broadcaster_client_cpu_pct: cpu.at(-1),
    server_threads: threadsNow,
    server_threads_base: baseThreads,
    server_rss_mb: rss,
    server_rss_base_mb: baseRss,
    server_rss_per_listener_kb: ((rss - baseRss) * 1024) / total,
    server_threads_per_listener: (threadsNow - baseThreads) / total,
  };
  r.sustained = r.failed === 0 && r.connected === total && r.packets_lost === 0;
  return r;
}

requireTestNetwork();
if (!fs.existsSync(sendBin)) throw new Error(`fc25-send not built at ${sendBin}`);
const dataDir = tempDir('fc25-bench-fanout-');
const maxListeners = Math.max(PER_BROADCASTER, ...LISTENERS);
const maxCasters = Math.max(1, ...BROADCASTERS);
log(`preparing ${maxCasters} broadcasters and ${maxListeners} listeners`);
await prepareUsers(dataDir, maxCasters, maxListeners);
const results = [];
let engine = '?';  // set by run()
const plan = [...LISTENERS.map((m) => [1, m]), ...BROADCASTERS.map((n) => [n, PER_BROADCASTER])];
for (const [n, m] of plan) {
  log(`run: ${n} broadcaster(s) × ${m} listeners`);
  const r = await run(dataDir, n, m);
  results.push(r);
  log(`  ${r.connected}/${r.listeners} connected in ${r.join_s.toFixed(1)} s (${r.failed} failed${r.failure_example ? `: ${r.failure_example}` : ''}), ` +
    `lost ${r.packets_lost} of ${r.packets_sent} (${r.dropped_by_server} dropped by the server, ${r.udp_receive_buffer_errors} by full ` +
    `socket buffers; worst listener ${r.worst_listener_pct.toFixed(1)} %), ` +
    `latency steady p50 ${r.steady_latency_p50_ms} ms p99 ${r.steady_latency_p99_ms} ms max ${r.steady_latency_max_ms?.toFixed(1)} ms, ` +
    `whole stream p50 ${r.latency_p50_ms} ms p99 ${r.latency_p99_ms} ms max ${r.latency_max_ms?.toFixed(1)} ms, ` +
    `server CPU ${r.server_cpu_pct.toFixed(0)} % (base ${r.server_cpu_base_pct.toFixed(0)} %, ` +
    `${r.server_cpu_per_listener_pct.toFixed(2)} % per listener), listener clients ${r.listener_clients_cpu_pct.toFixed(0)} %, ` +
    `${r.server_threads} threads (base ${r.server_threads_base}), ${r.server_rss_mb.toFixed(0)} MB ` +
    `(base ${r.server_rss_base_mb.toFixed(0)} MB, ${r.server_rss_per_listener_kb.toFixed(0)} KB per listener)` +
    `${r.sustained ? '' : '  NOT SUSTAINED'}`);
}
if (JSON_OUT) console.log(JSON.stringify({ machine: machine(), engine, window_s: WINDOW, results }, null, 1));
else log(`machine: ${machine()}; denoise engine: ${engine}`);
