// A presence socket belongs to the session it was opened with: logging that session out (in this process or
// another) or its expiry closes it, at once, while the same user's other sessions keep theirs; and one user cannot
// hold more than FC25_MAX_SOCKETS_PER_USER sockets in a process.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { startRedis } from '../support/redis.mjs';
import { startServer, tempDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with {code, ms} when the socket closes, or null if it is still open after `ms`.
async function closedWithin(sock, ms) {
  const t0 = performance.now();
  const code = await Promise.race([sock.closed, sleep(ms).then(() => null)]);
  return code === null ? null : { code, ms: performance.now() - t0 };
}

describe('presence sockets and sessions', () => {
  let server;
  before(async () => { server = await startServer({ env: { FC25_MAX_SOCKETS_PER_USER: '4' } }); });
  after(async () => { await server?.stop(); });

  it('logout closes every socket of that session at once; the other session keeps its socket and its events', async (t) => {
    const name = uniqueName('alice');
    const laptop = new Client(server.url);
    await laptop.register(name);
    const phone = new Client(server.url);
    await phone.login(name);
    const tab1 = laptop.openPresence();
    const tab2 = laptop.openPresence();
    const other = phone.openPresence();
    await Promise.all([tab1.ready, tab2.ready, other.ready]);

    const r = await laptop.post('/api/auth/logout');
    assert.equal(r.status, 200);
    const [c1, c2] = await Promise.all([closedWithin(tab1, 1000), closedWithin(tab2, 1000)]);
    assert.ok(c1 && c2, 'both sockets of the logged-out session close within 1 s');
    t.diagnostic(`closed ${c1.ms.toFixed(0)} and ${c2.ms.toFixed(0)} ms after the logout answered`);
    assert.equal(c1.code, 4001);
    assert.equal(c2.code, 4001);

    // The phone's socket is open and still gets events.
    const bob = new Client(server.url);
    await bob.register(uniqueName('bob'));
    assert.equal((await bob.post('/api/friends/requests', { username: name })).status, 201);
    const ev = await other.next((m) => m.type === 'friend_request', 2000);
    assert.equal(ev.request.from, bob.username);
    assert.equal(other.ws.readyState, 1, 'the other session\'s socket is open');
    other.close();
  });

  it('a socket whose session expires is closed within the check interval (5 s)', async (t) => {
    const c = new Client(server.url);
    await c.register(uniqueName('carol'));
    const keep = new Client(server.url);
    await keep.login(c.username);
    const sock = c.openPresence();
    const kept = keep.openPresence();
    await Promise.all([sock.ready, kept.ready]);
    const hash = crypto.createHash('sha256').update(c.cookies.get('fc25_session')).digest('hex');
    query(server.dbPath, `UPDATE sessions SET expires_at = 1 WHERE token_hash = '${hash}'`);
    const closed = await closedWithin(sock, 7000);
    assert.ok(closed, 'the expired session\'s socket closes');
    t.diagnostic(`closed ${closed.ms.toFixed(0)} ms after the session expired`);
    assert.equal(closed.code, 4001);
    assert.ok(closed.ms <= 6000, `${closed.ms.toFixed(0)} ms`);
    assert.equal(kept.ws.readyState, 1, 'the other session\'s socket is open');
    kept.close();
  });

  it('one user holds at most FC25_MAX_SOCKETS_PER_USER sockets; one more is refused 429, others are not affected', async () => {
    const d = new Client(server.url);
    await d.register(uniqueName('dave'));
    const socks = [];
    for (let i = 0; i < 4; i++) {
      const s = d.openPresence();
      await s.ready;
      socks.push(s);
    }
    const extra = d.openPresence();
    const err = await extra.opened.then(() => null, (e) => e);
    assert.ok(err, 'the fifth socket is refused');
    assert.equal(err.status, 429);
    assert.equal(err.body.error.code, 'too_many_sockets');
    assert.match(err.body.error.message, /already has 4 presence sockets/);
    // Another user is not affected, and a closed socket frees its place.
    const e = new Client(server.url);
    await e.register(uniqueName('erin'));
    const es = e.openPresence();
    await es.ready;
    await socks.pop().close();
    await sleep(100);
    const again = d.openPresence();
    await again.ready;
    for (const s of [...socks, again, es]) s.close();
    assert.equal((await (await fetch(server.url + '/api/health')).json()).failures?.presence, undefined);
  });
});

describe('logout in another server process (Redis channel layer)', () => {
  let redis, A, B;
  after(async () => {
    await A?.stop();
    await B?.stop();
    await redis?.stop();
  });

  it('the socket held by the other process closes at once', async (t) => {
    redis = await startRedis();
    const env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) };
    A = await startServer({ env });
    B = await startServer({ env, dataDir: tempDir(), db: A.dbPath });
    const name = uniqueName('gina');
    const onA = new Client(A.url);
    await onA.register(name);
    const onB = new Client(B.url);
    onB.cookies = new Map(onA.cookies);  // the same session, its socket on B
    const sock = onB.openPresence();
    await sock.ready;
    const r = await onA.post('/api/auth/logout');
    assert.equal(r.status, 200);
    const closed = await closedWithin(sock, 1000);
    assert.ok(closed, 'the socket on the other process closes within 1 s');
    t.diagnostic(`closed ${closed.ms.toFixed(0)} ms after the logout answered on the other process`);
    assert.equal(closed.code, 4001);
  });
});
