#!/usr/bin/env node
// Listeners across nodes: one stream ingested on node A (fc25-send), heard by N fc25-send listeners on A and N on B
// (two fc25 serve nodes on one PostgreSQL and one Redis, with a cluster secret), so that B's listeners are fed by
// one relay from A.
//
// Phases, each measured over --window seconds of CPU time of both servers:
//   P0 the stream alone on A;  P1 one listener on A;  P2 one more on B (the relay opens);  P3 N on A and N on B.
// Reported: the CPU the relay costs A (P2 - P1) and what a first listener on B costs B (P2 - P0 on B: the relay's
// receiving side and one listener's connection) beside what a first listener on A costs A (P1 - P0: the encoder
// and one connection); loss (packets a server sent a listener that it never received); the relay's transit (A's
// sending -> B's arrival, both on this host's clock); and the latency from the audio's arrival at A to the packet
// entering a listener's payloader on A ("fanout closed") and on B ("relay ... closed"): their difference is what
// the relay adds.
//
//   scripts/netns-run.sh node bench/relay/run.mjs [--listeners 100] [--window 10] [--nice 19] [--per-process 25] [--json]

import { requireTestNetwork } from '../../tests/support/browser.mjs';
import { Client, makeFriends } from '../../tests/support/client.mjs';
import { startPostgres } from '../../tests/support/postgres.mjs';
import { startRedis } from '../../tests/support/redis.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import { flag, machine, opt, sleep, spawnSend, speechWav as wav, ticks } from '../support.mjs';

const N = Number(opt('listeners', 100));
const WINDOW = Number(opt('window', 10));
const NICE = Number(opt('nice', 19));
const PER_PROCESS = Number(opt('per-process', 25));
const JSON_OUT = flag('json');
const password = 'bench password';
const secret = 'relay-bench-cluster-secret';
const log = (...a) => { if (!JSON_OUT) console.error(...a); };

const send = (server, extra, nice = 0) => spawnSend(server, password, extra, nice);

async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (!(await cond()) && Date.now() < end) await sleep(100);
  return cond();
}

// CPU of each server over the window, % of one core.
async function cpu(servers) {
  const c0 = servers.map((s) => ticks(s.proc.pid));
  const t0 = Date.now();
  await sleep(WINDOW * 1000);
  const secs = (Date.now() - t0) / 1000;
  return servers.map((s, i) => (ticks(s.proc.pid) - c0[i]) / secs);
}

const health = async (s) => (await (await fetch(`${s.url}/api/health`)).json());
const count = (text, re) => (text.match(re) || []).length;

async function main() {
  requireTestNetwork();
  const pg = startPostgres();
  const redis = await startRedis();
  const env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
    FC25_CLUSTER_SECRET: secret, FC25_DENOISER: 'passthrough' };
  const A = await startServer({ env, dataDir: tempDir(), args: ['--database-url', pg.url] });
  const B = await startServer({ env, dataDir: tempDir(), args: ['--database-url', pg.url] });
  const stop = async () => { await A.stop(); await B.stop(); await redis.stop(); pg.down(); };
  try {
    await waitFor(async () => (await health(A)).cluster_nodes === 2 && (await health(B)).cluster_nodes === 2, 10000);
    log(`machine: ${machine()}; denoiser passthrough (the relay carries encoded packets: the denoiser does not matter)`);
    const caster = new Client(A.url);
    await caster.register('cast0', password);
    for (let start = 0; start < 2 * N; start += 10) {
      await Promise.all(Array.from({ length: Math.min(10, 2 * N - start) }, async (_, k) => {
        const l = new Client(A.url);
        await l.register(`lis${start + k}`, password);
        await makeFriends(caster, l);
      }));
    }
    log(`users: cast0 and ${2 * N} listeners`);
    const broadcast = send(A, ['--user', 'cast0', '--wav', wav, '--seconds', '900']);
    if (!await waitFor(() => /media connected/.test(A.logs()), 30000)) throw new Error('the broadcaster did not connect');
    await sleep(1000);
    const p0 = await cpu([A, B]);
    log(`P0 stream alone: A ${p0[0].toFixed(1)} % B ${p0[1].toFixed(1)} %`);
    const long = String(WINDOW * 3 + 120);
    const one = (server, first) => send(server, ['--listen', 'cast0', '--user', 'lis', '--first', String(first), '--streams', '1',
      '--seconds', long, '--count-at-transport'], NICE);
    const first = [one(A, 0)];
    await waitFor(async () => (await health(A)).listeners === 1, 15000);
    await sleep(1000);
    const p1 = await cpu([A, B]);
    log(`P1 one listener on A: A ${p1[0].toFixed(1)} % B ${p1[1].toFixed(1)} %`);
    first.push(one(B, N));
    await waitFor(async () => (await health(B)).listeners === 1, 15000);
    await sleep(1000);
    const p2 = await cpu([A, B]);
    log(`P2 one more on B (relay): A ${p2[0].toFixed(1)} % B ${p2[1].toFixed(1)} %`);

    // P3: the rest join at 10 per second per node, in processes of --per-process listeners.
    const ramp = Math.max(1, (N - 1) / 10);
    const seconds = ramp + 10 + WINDOW;
    const t0 = Date.now() + (5 + 0.12 * N) * 1000;
    const many = [];
    for (const [server, base] of [[A, 1], [B, N + 1]]) {
      for (let f = 0; f < N - 1; f += PER_PROCESS) {
        const n = Math.min(PER_PROCESS, N - 1 - f);
        many.push(send(server, ['--listen', 'cast0', '--user', 'lis', '--first', String(base + f), '--streams', String(n),
          '--seconds', String(seconds), '--ramp', String(ramp), '--ramp-of', String(N - 1), '--start-at', String(t0),
          '--count-at-transport'], NICE));
      }
    }
    await waitFor(async () => (await health(A)).listeners + (await health(B)).listeners >= 2 * N, (t0 - Date.now()) + ramp * 1000 + 60000);
    const joined = [(await health(A)).listeners, (await health(B)).listeners];
    await sleep(1000);
    const p3 = await cpu([A, B]);
    log(`P3 ${joined[0]} on A, ${joined[1]} on B: A ${p3[0].toFixed(1)} % B ${p3[1].toFixed(1)} %`);
    const results = await Promise.all(many.map((l) => l.done));
    for (const l of first) l.kill('SIGTERM');
    const firstResults = await Promise.all(first.map((l) => l.done));
    const hA = await health(A);
    const hB = await health(B);
    broadcast.kill('SIGTERM');
    await waitFor(() => /fanout closed/.test(A.logs()) && /relay of session=\d+ from \S+ (closed|ended)/.test(B.logs()), 20000);

    // Loss, per listener, against what its server sent it.
    const lines = results.concat(firstResults).flatMap((r) => r.lines).filter((l) => !l.summary && !l.error && l.listen_id);
    const failed = results.flatMap((r) => r.lines).filter((l) => l.error).length;
    const sentBy = (server) => new Map([...server.logs().matchAll(/listener left session=\d+ listener=(\w+) \((?:[^;]+); (\d+) packets sent/g)]
      .map((m) => [m[1], Number(m[2])]));
    const [sentA, sentB] = [sentBy(A), sentBy(B)];
    const loss = { A: { sent: 0, lost: 0 }, B: { sent: 0, lost: 0 } };
    for (const l of lines) {
      const node = sentA.has(l.listen_id) ? 'A' : sentB.has(l.listen_id) ? 'B' : null;
      if (!node) continue;
      const s = (node === 'A' ? sentA : sentB).get(l.listen_id);
      loss[node].sent += s;
      loss[node].lost += Math.max(0, s - l.packets_received);
    }
    const lat = (re, text) => {
      const m = re.exec(text);
      return m ? { p50: Number(m[1]), p99: Number(m[2]), max: Number(m[3]) } : null;
    };
    const onA = lat(/fanout closed session=\d+ packets=\d+ latency p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms/, A.logs());
    const onB = lat(/relay of session=\d+ from \S+ (?:closed|ended)[^;]*; packets=\d+ latency p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms/, B.logs());
    const r = {
      machine: machine(),
      listeners_per_node: N,
      joined: { A: joined[0], B: joined[1] },
      failed_listeners: failed,
      relays_opened_on_B: count(B.logs(), /relay of session=\d+ from \S+ opened/g),
      relay_packets: { written_by_A: hA.relays.out.packets, received_by_B: hB.relays.in.packets, dropped_by_A: hA.relays.out.dropped },
      relay_transit_ms: hB.relays.in.transit_ms,
      loss_pct: { A: loss.A.sent ? (100 * loss.A.lost) / loss.A.sent : null, B: loss.B.sent ? (100 * loss.B.lost) / loss.B.sent : null },
      packets_sent: { A: loss.A.sent, B: loss.B.sent },
      latency_to_payloader_ms: { A: onA, B: onB },
      relay_adds_ms: onA && onB ? { p50: onB.p50 - onA.p50, p99: onB.p99 - onA.p99 } : null,
      cpu_pct: { P0: p0, P1: p1, P2: p2, P3: p3 },
      relay_cpu_pct: { origin_send: p2[0] - p1[0], first_listener_on_B: p2[1] - p0[1], first_listener_on_A: p1[0] - p0[0] },
    };
    if (JSON_OUT) console.log(JSON.stringify(r, null, 2));
    else {
      log(JSON.stringify(r, null, 2));
    }
  } finally {
    await stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
