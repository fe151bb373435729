import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('presence socket', () => {
  let server;
  const user = async (p) => { const c = new Client(server.url); await c.register(uniqueName(p)); return c; };
  // A dropped socket waits 1 s here for its page to come back (15 s by default).
  before(async () => { server = await startServer({ env: { FC25_RECONNECT_GRACE_S: '1' } }); });
  after(async () => { await server.stop(); });

  it('sends a snapshot of the friends on connect', async () => {
    const [a, b, c] = [await user('na'), await user('nb'), await user('nc')];
    await makeFriends(a, b);
    const { body: s } = await b.post('/api/stream/start', { client_id: 'b1' });
    const sock = a.openPresence();
    await sock.ready;
    const snap = await sock.next((m) => m.type === 'snapshot');
    assert.equal(snap.self.username, a.username);
    assert.equal(snap.self.is_streaming, false);
    assert.deepEqual(snap.friends, [{ username: b.username, is_streaming: true, session_id: s.session_id,
      started_at: s.started_at, state: 'live', reconnecting_since: null }]);
    assert.ok(!snap.friends.some((f) => f.username === c.username));
    sock.close();
  });

  it('pushes streaming_status to friends and to the user\'s other tabs, not to strangers', async () => {
    const [a, b, c] = [await user('pa'), await user('pb'), await user('pc')];
    await makeFriends(a, b);
    const bSock = b.openPresence();
    const cSock = c.openPresence();
    const aOther = a.openPresence({ clientId: 'other-tab' });
    await Promise.all([bSock.ready, cSock.ready, aOther.ready]);
    await Promise.all([bSock.next((m) => m.type === 'snapshot'), cSock.next((m) => m.type === 'snapshot')]);
    const { body: s } = await a.post('/api/stream/start', { client_id: 'main-tab' });
    const seen = await bSock.next((m) => m.type === 'streaming_status');
    assert.deepEqual([seen.username, seen.is_streaming, seen.session_id, seen.started_at],
      [a.username, true, s.session_id, s.started_at]);
    assert.equal((await aOther.next((m) => m.type === 'streaming_status')).is_streaming, true);
    await a.post('/api/stream/stop', {});
    const ended = await bSock.next((m) => m.type === 'streaming_status');
    assert.deepEqual([ended.is_streaming, ended.end_reason], [false, 'user']);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!cSock.messages.some((m) => m.type === 'streaming_status'), 'a stranger heard nothing');
    for (const s2 of [bSock, cSock, aOther]) s2.close();
  });

  it('ends the stream when the owning tab\'s socket closes, but not when another tab\'s does', async () => {
    const [a, b] = [await user('oa'), await user('ob')];
    await makeFriends(a, b);
    const bSock = b.openPresence();
    const owner = a.openPresence({ clientId: 'owner-tab' });
    const other = a.openPresence({ clientId: 'second-tab' });
    await Promise.all([bSock.ready, owner.ready, other.ready]);
    const { body: s } = await a.post('/api/stream/start', { client_id: 'owner-tab' });
    await bSock.next((m) => m.type === 'streaming_status' && m.is_streaming);
    await other.close();
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await a.get('/api/me')).body.is_streaming, true, 'another tab closing does not stop it');
    await owner.terminate();
    // The friend hears "reconnecting" first (the page may come back), then the end once the grace has run out.
    const reconnecting = await bSock.next((m) => m.type === 'streaming_status', 2000);
    assert.deepEqual([reconnecting.is_streaming, reconnecting.state, reconnecting.session_id], [true, 'reconnecting', s.session_id]);
    const ended = await bSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 3000);
    assert.equal(ended.end_reason, 'socket_closed');
    assert.equal(ended.state, 'offline');
    assert.equal(query(server.dbPath, `SELECT end_reason FROM stream_sessions WHERE id = ${s.session_id}`)[0].end_reason, 'socket_closed');
    bSock.close();
  });

  it('answers ping with pong and a bad message with an error, staying open', async () => {
    const a = await user('pp');
    const sock = a.openPresence();
    await sock.ready;
    sock.send({ type: 'ping', t: 42 });
    assert.equal((await sock.next((m) => m.type === 'pong')).t, 42);
    sock.send('{not json');
    const err = await sock.next((m) => m.type === 'error');
    assert.equal(err.error.code, 'bad_message');
    sock.send({ type: 'launch_rockets' });
    assert.match((await sock.next((m) => m.type === 'error')).error.message, /launch_rockets/);
    sock.send({ type: 'ping', t: 'still here' });
    assert.equal((await sock.next((m) => m.type === 'pong')).t, 'still here');
    sock.close();
  });

  it('closes the socket (1009) on a message over 64 KiB', async () => {
    const a = await user('big');
    const sock = a.openPresence();
    await sock.ready;
    sock.send({ type: 'ping', t: 'x'.repeat(70 * 1024) });
    // 1009, or 1006 when TCP resets the connection (the rest of the message unread) before the close frame arrives.
    assert.ok([1009, 1006].includes(await sock.closed));
    await new Promise((r) => setTimeout(r, 300));
    assert.match(server.logs(), /sent a message over 65536 bytes: closing \(1009\)/);
  });

  it('refuses a foreign Origin (403) and a missing session (401)', async () => {
    const a = await user('or');
    const foreign = a.openPresence({ origin: 'http://evil.example' });
    await assert.rejects(foreign.opened, (e) => e.status === 403 && e.body.error.code === 'forbidden_origin');
    const anon = new Client(server.url).openPresence();
    await assert.rejects(anon.opened, (e) => e.status === 401 && e.body.error.code === 'not_authenticated');
  });
});
