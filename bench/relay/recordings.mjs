#!/usr/bin/env node
// Recordings through another node: a recording of --minutes minutes (16-bit 48 kHz mono, written into node A's
// recordings directory with its row in the shared PostgreSQL) downloaded whole by a friend, from A (its disk) and
// through B (which asks A and streams the answer on), in turns A B A B … so that both see the same machine.
// Reported per path: time to the whole file and to the first byte of a seek (Range of 64 KiB in the middle), their
// ratios B/A per pair, and B's resident memory before and at the end of the downloads through it.
//
//   node bench/relay/recordings.mjs [--minutes 30] [--rounds 5] [--json]

import fs from 'node:fs';
import path from 'node:path';

import { Client, makeFriends } from '../../tests/support/client.mjs';
import { psql, startPostgres } from '../../tests/support/postgres.mjs';
import { startRedis } from '../../tests/support/redis.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import { flag, machine, opt, sleep, ticks } from '../support.mjs';

const MINUTES = Number(opt('minutes', 30));
const ROUNDS = Number(opt('rounds', 5));
const JSON_OUT = flag('json');
const secret = 'recordings-bench-cluster-secret';
const password = 'bench password';
const log = (...a) => { if (!JSON_OUT) console.error(...a); };
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// A WAV file of `seconds` of a quiet tone, as the server writes them.
function writeWav(file, seconds) {
  const samples = seconds * 48000;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0); header.writeUInt32LE(36 + samples * 2, 4); header.write('WAVE', 8);
  header.write('fmt ', 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22);
  header.writeUInt32LE(48000, 24); header.writeUInt32LE(96000, 28); header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34); header.write('data', 36); header.writeUInt32LE(samples * 2, 40);
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, header);
  const chunk = Buffer.alloc(96000);
  for (let i = 0; i < 48000; ++i) chunk.writeInt16LE(Math.round(3000 * Math.sin(2 * Math.PI * 440 * i / 48000)), i * 2);
  for (let s = 0; s < seconds; ++s) fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  return 44 + samples * 2;
}

async function download(client, url, headers = {}) {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { Cookie: client.cookieHeader(), ...headers } });
  const reader = res.body.getReader();
  let bytes = 0;
  let first = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!first) first = performance.now() - t0;
    bytes += value.length;
  }
  return { status: res.status, bytes, ms: performance.now() - t0, first_ms: first };
}

async function main() {
  const pg = startPostgres();
  const redis = await startRedis();
  const env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
    FC25_CLUSTER_SECRET: secret, FC25_DENOISER: 'passthrough', FC25_LOG_LEVEL: 'warn' };
  const A = await startServer({ env, dataDir: tempDir(), args: ['--database-url', pg.url] });
  const B = await startServer({ env, dataDir: tempDir(), args: ['--database-url', pg.url] });
  try {
    const alice = new Client(A.url);
    await alice.register(`alice${Date.now() % 100000}`, password);
    const bob = new Client(B.url);
    await bob.register(`bob${Date.now() % 100000}`, password);
    await makeFriends(alice, bob);
    const bobOnA = new Client(A.url);
    await bobOnA.login(bob.username, password);

    // A session of alice's that ended, and its recording on A's disk.
    const dir = path.join(A.dataDir, 'streamed_audios');
    const disk = fs.readFileSync(path.join(dir, '.disk-id'), 'utf8').trim();
    const [user] = psql(pg.url, `SELECT id FROM users WHERE username = '${alice.username}'`);
    const [session] = psql(pg.url, `INSERT INTO stream_sessions(user_id, client_id, started_at, ended_at, end_reason)
      VALUES (${user.id}, 'bench', 1, 2, 'user') RETURNING id`);
    const name = `${alice.username}_${session.id}.wav`;
    const size = writeWav(path.join(dir, name), MINUTES * 60);
    const [rec] = psql(pg.url, `INSERT INTO stream_recordings(session_id, user_id, path, duration_ms, bytes, created_at,
      disk_id) VALUES (${session.id}, ${user.id}, 'streamed_audios/${name}', ${MINUTES * 60000}, ${size}, 3, '${disk}')
      RETURNING id`);
    const url = `/media/recordings/${rec.id}.wav`;
    log(`${machine()}\nrecording ${rec.id}: ${MINUTES} min, ${(size / 2 ** 20).toFixed(1)} MiB on A's disk`);

    const rssBefore = rssMiB(B.proc.pid);
    let rssPeak = rssBefore;
    const rows = [];
    const middle = Math.floor(size / 2);
    for (let r = 0; r < ROUNDS; ++r) {
      const a = await download(bobOnA, A.url + url);
      const peak = setInterval(() => { rssPeak = Math.max(rssPeak, rssMiB(B.proc.pid)); }, 20);
      const [ta, tb] = [ticks(A.proc.pid), ticks(B.proc.pid)];
      const b = await download(bob, B.url + url);
      clearInterval(peak);
      log(`  through B: CPU A ${(ticks(A.proc.pid) - ta) * 10} ms, B ${(ticks(B.proc.pid) - tb) * 10} ms`);
      const sa = await download(bobOnA, A.url + url, { Range: `bytes=${middle}-${middle + 65535}` });
      const sb = await download(bob, B.url + url, { Range: `bytes=${middle}-${middle + 65535}` });
      if (a.bytes !== size || b.bytes !== size || sa.bytes !== 65536 || sb.bytes !== 65536) {
        throw new Error(`wrong sizes: ${JSON.stringify({ a, b, sa, sb })}`);
      }
      rows.push({ a_ms: a.ms, b_ms: b.ms, ratio: b.ms / a.ms, seek_a_ms: sa.ms, seek_b_ms: sb.ms, seek_ratio: sb.ms / sa.ms });
      log(`round ${r + 1}: whole ${a.ms.toFixed(0)} ms from A, ${b.ms.toFixed(0)} ms through B (x${(b.ms / a.ms).toFixed(2)}); ` +
        `seek ${sa.ms.toFixed(1)} / ${sb.ms.toFixed(1)} ms`);
      await sleep(200);
    }
    const out = {
      machine: machine(), minutes: MINUTES, bytes: size, rounds: rows,
      whole_ms: { a: median(rows.map((x) => x.a_ms)), b: median(rows.map((x) => x.b_ms)) },
      whole_ratio_median: median(rows.map((x) => x.ratio)),
      throughput_mib_s: { a: size / 2 ** 20 / (median(rows.map((x) => x.a_ms)) / 1000),
        b: size / 2 ** 20 / (median(rows.map((x) => x.b_ms)) / 1000) },
      seek_ms: { a: median(rows.map((x) => x.seek_a_ms)), b: median(rows.map((x) => x.seek_b_ms)) },
      seek_ratio_median: median(rows.map((x) => x.seek_ratio)),
      b_rss_mib: { before: rssBefore, peak: rssPeak },
    };
    if (JSON_OUT) console.log(JSON.stringify(out));
    else {
      log(`median: whole file ${out.whole_ms.a.toFixed(0)} ms from A (${out.throughput_mib_s.a.toFixed(0)} MiB/s), ` +
        `${out.whole_ms.b.toFixed(0)} ms through B (${out.throughput_mib_s.b.toFixed(0)} MiB/s), ratio x${out.whole_ratio_median.toFixed(2)}; ` +
        `seek ${out.seek_ms.a.toFixed(1)} / ${out.seek_ms.b.toFixed(1)} ms (x${out.seek_ratio_median.toFixed(2)}); ` +
        `B's memory ${rssBefore.toFixed(0)} MiB before, ${rssPeak.toFixed(0)} MiB at most while streaming`);
    }
  } finally {
    await A.stop();
    await B.stop();
    await redis.stop();
    pg.down();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
