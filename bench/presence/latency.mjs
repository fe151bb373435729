#!/usr/bin/env node
// Presence latency: one broadcaster and N friends' presence sockets on loopback. The broadcaster starts and stops
// a stream R times; for every friend we time from sending the HTTP request to that friend's receipt of the
// streaming_status event. Prints p50/p99/max for start and stop.
//
//   node bench/presence/latency.mjs [--clients 1000] [--rounds 50] [--backend memory|redis]
//                                   [--store sqlite|postgres] [--json]
//
// --store postgres starts a PostgreSQL of its own (tests/support/postgres.sh) and gives the servers that instead
// of their SQLite file. Besides the receipts it times each start/stop request's own answer (the API's latency).
//
// It starts its own fc25 serve process(es) (and redis-server for --backend redis: two servers sharing one
// database, the broadcaster on the first, the friends split across both), on 127.0.0.1 only, and seeds the
// friends straight into the database (one password hash for all, sessions inserted hashed), since hashing
// 1000 Argon2id passwords through the API would take minutes and measure nothing of interest.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';

import { Client } from '../../tests/support/client.mjs';
import { startRedis } from '../../tests/support/redis.mjs';
import { startPostgres } from '../../tests/support/postgres.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import { machine } from '../support.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const N = Number(opt('clients', 1000));
const ROUNDS = Number(opt('rounds', 50));
const BACKEND = opt('backend', 'memory');
const STORE = opt('store', 'sqlite');
const JSON_OUT = args.includes('--json');
const deadline = Date.now() + Number(opt('max-seconds', 600)) * 1000;
const log = (...a) => { if (!JSON_OUT) console.error(...a); };

function sql(db, text) {
  if (db.startsWith('postgresql://')) execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db], { input: text });
  else execFileSync('sqlite3', [db], { input: text });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  let redis;
  const servers = [];
  const dataDir = tempDir('fc25-bench-');
  const pg = STORE === 'postgres' ? startPostgres() : null;
  const args = pg ? ['--database-url', pg.url] : [];
  if (BACKEND === 'redis') {
    redis = await startRedis();
    const env = { CHANNEL_BACKEND: 'redis', REDIS_PORT: String(redis.port) };
    servers.push(await startServer({ env, dataDir, args }));
    servers.push(await startServer({ env, dataDir: tempDir('fc25-bench-'), db: servers[0].dbPath, args }));
  } else {
    servers.push(await startServer({ dataDir, args }));
  }
  const db = pg ? pg.url : servers[0].dbPath;
  try {
    const broadcaster = new Client(servers[0].url);
    await broadcaster.register('broadcaster');
    log(`seeding ${N} friends into ${db}`);
    const tokens = [];
    const now = Date.now();
    let text = 'BEGIN;\n';
    text += `CREATE TEMP TABLE h AS SELECT password_hash FROM users WHERE username = 'broadcaster';\n`;
    for (let i = 0; i < N; i++) {
      const token = crypto.randomBytes(32).toString('hex');
      tokens.push(token);
      const hash = crypto.createHash('sha256').update(token).digest('hex');
      text += `INSERT INTO users(username, password_hash, created_at) SELECT 'friend${i}', password_hash, ${now} FROM h;\n`;
      text += `INSERT INTO sessions(token_hash, user_id, created_at, expires_at) SELECT '${hash}', id, ${now}, ${now + 86400000} FROM users WHERE username = 'friend${i}';\n`;
    }
    text += `INSERT INTO friendships(user_id, friend_id, created_at) SELECT b.id, f.id, ${now} FROM users b, users f WHERE b.username = 'broadcaster' AND f.username LIKE 'friend%';\n`;
    text += `INSERT INTO friendships(user_id, friend_id, created_at) SELECT f.id, b.id, ${now} FROM users b, users f WHERE b.username = 'broadcaster' AND f.username LIKE 'friend%';\n`;
    text += 'COMMIT;\n';
    sql(db, text);

    log(`opening ${N} presence sockets on ${servers.length} server(s)`);
    const sockets = [];
    for (let i = 0; i < N; i++) {
      const server = servers[i % servers.length];
      const c = new Client(server.url);
      c.cookies.set('fc25_session', tokens[i]);
      sockets.push(c.openPresence({ clientId: `f${i}` }));
      if (i % 100 === 99) await Promise.all(sockets.slice(i - 99, i + 1).map((s) => s.opened));
    }
    await Promise.all(sockets.map((s) => s.opened));
    await Promise.all(sockets.map((s) => s.next((m) => m.type === 'snapshot', 30000)));
    log(`all ${N} sockets have their snapshot; ${ROUNDS} rounds of start/stop`);

    const lat = { start: [], stop: [] };
    const api = { start: [], stop: [] };   // the request's own answer
    for (let r = 0; r < ROUNDS && Date.now() < deadline; r++) {
      for (const kind of ['start', 'stop']) {
        const live = kind === 'start';
        const waits = sockets.map((s) => s.next((m) => m.type === 'streaming_status' && m.is_streaming === live, 30000));
        const t0 = performance.now();
        const res = await broadcaster.post(`/api/stream/${kind}`, live ? { client_id: 'bench-tab' } : {});
        if (res.status >= 300) throw new Error(`${kind}: ${res.status} ${res.text}`);
        api[kind].push(performance.now() - t0);
        const got = await Promise.all(waits);
        for (const m of got) lat[kind].push(m.receivedAt - t0);
        for (const s of sockets) s.messages.length = 0;
      }
      if (r % 10 === 9) log(`  round ${r + 1}/${ROUNDS}`);
    }
    const summary = {};
    for (const kind of ['start', 'stop']) {
      const v = lat[kind].sort((a, b) => a - b);
      const a = api[kind].sort((x, y) => x - y);
      summary[kind] = { samples: v.length, p50_ms: percentile(v, 50), p99_ms: percentile(v, 99), max_ms: v[v.length - 1],
        api_p50_ms: percentile(a, 50), api_p99_ms: percentile(a, 99) };
    }
    const result = { machine: machine(), backend: BACKEND, store: STORE, clients: N, rounds: ROUNDS, servers: servers.length, ...summary };
    if (JSON_OUT) console.log(JSON.stringify(result));
    else {
      console.log(`machine: ${machine()}`);
      console.log(`presence latency, ${BACKEND} channel layer, ${STORE} store, ${N} friends, ${ROUNDS} rounds, ${servers.length} server process(es)`);
      for (const kind of ['start', 'stop']) {
        const s = summary[kind];
        console.log(`  ${kind.padEnd(5)} p50 ${s.p50_ms.toFixed(1)} ms   p99 ${s.p99_ms.toFixed(1)} ms   max ${s.max_ms.toFixed(1)} ms   (${s.samples} receipts)` +
          `   request answered p50 ${s.api_p50_ms.toFixed(1)} ms  p99 ${s.api_p99_ms.toFixed(1)} ms`);
      }
    }
    for (const s of sockets) s.terminate();
  } finally {
    for (const s of servers) await s.stop();
    if (redis) await redis.stop();
    pg?.down();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
