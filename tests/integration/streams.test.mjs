import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('stream lifecycle', () => {
  let server;
  const user = async (p) => { const c = new Client(server.url); await c.register(uniqueName(p)); return c; };
  const session = (id) => query(server.dbPath, `SELECT * FROM stream_sessions WHERE id = ${id}`)[0];
  const active = (c) => query(server.dbPath,
    `SELECT a.* FROM active_streams a JOIN users u ON u.id = a.user_id WHERE u.username = '${c.username}'`);
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  it('starts once per tab: the same tab gets its session back, another tab gets 409', async () => {
    const a = await user('sa');
    const r = await a.post('/api/stream/start', { client_id: 'tab-one' });
    assert.equal(r.status, 201);
    assert.ok(Number.isInteger(r.body.session_id));
    assert.ok(Math.abs(Date.parse(r.body.started_at) - Date.now()) < 5000);
    const again = await a.post('/api/stream/start/', { client_id: 'tab-one' });
    assert.equal(again.status, 200);
    assert.equal(again.body.session_id, r.body.session_id);
    const other = await a.post('/api/stream/start', { client_id: 'tab-two' });
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, 'already_streaming');
    const me = (await a.get('/api/me')).body;
    assert.equal(me.is_streaming, true);
    assert.equal(me.session_id, r.body.session_id);
    assert.equal(me.client_id, 'tab-one');
    assert.equal(active(a).length, 1);
    assert.equal(query(server.dbPath, `SELECT is_streaming FROM users WHERE username = '${a.username}'`)[0].is_streaming, 1);
  });

  it('stops idempotently and records the reason', async () => {
    const a = await user('st');
    const { body: s } = await a.post('/api/stream/start', { client_id: 't1' });
    const first = await a.post('/api/stream/stop', {});
    assert.equal(first.status, 200);
    assert.deepEqual([first.body.stopped, first.body.session_id, first.body.end_reason], [true, s.session_id, 'user']);
    const second = await a.post('/api/stream/stop', {});
    assert.equal(second.status, 200);
    assert.equal(second.body.stopped, false);
    const row = session(s.session_id);
    assert.equal(row.end_reason, 'user');
    assert.ok(row.ended_at >= row.started_at);
    assert.equal(active(a).length, 0);
    assert.equal(query(server.dbPath, `SELECT is_streaming FROM users WHERE username = '${a.username}'`)[0].is_streaming, 0);
  });

  it('takes the sendBeacon form body with the CSRF token, and a stale session id stops nothing', async () => {
    const a = await user('bc');
    const { body: s1 } = await a.post('/api/stream/start', { client_id: 'old' });
    await a.post('/api/stream/stop', {});
    const { body: s2 } = await a.post('/api/stream/start', { client_id: 'new' });
    const csrf = await a.csrf();
    const stale = await a.request('POST', '/api/stream/stop',
      { csrf: false, form: { csrf_token: csrf, session_id: String(s1.session_id), reason: 'page_unload' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.stopped, false);
    assert.equal(active(a).length, 1, 'the newer stream is still live');
    const beacon = await a.request('POST', '/api/stream/stop',
      { csrf: false, form: { csrf_token: csrf, session_id: String(s2.session_id), reason: 'page_unload' } });
    assert.equal(beacon.body.stopped, true);
    assert.equal(session(s2.session_id).end_reason, 'page_unload');
  });

  it('shows status to oneself and to friends only', async () => {
    const [a, b, c] = [await user('va'), await user('vb'), await user('vc')];
    await makeFriends(a, b);
    const { body: s } = await a.post('/api/stream/start', { client_id: 'x' });
    const own = await a.get('/api/stream/status');
    assert.deepEqual([own.body.username, own.body.is_streaming, own.body.session_id], [a.username, true, s.session_id]);
    const friend = await b.get(`/api/stream/status/?username=${a.username}`);
    assert.equal(friend.status, 200);
    assert.equal(friend.body.is_streaming, true);
    assert.equal(friend.body.started_at, s.started_at);
    const stranger = await c.get(`/api/stream/status?username=${a.username}`);
    assert.equal(stranger.status, 403);
    assert.equal(stranger.body.error.code, 'not_friends');
    assert.equal((await c.get('/api/stream/status?username=no_such_user')).status, 404);
  });

  it('never starts a stream by loading pages', async () => {
    const a = await user('pg');
    for (const p of ['/', '/login', '/register', `/u/${a.username}`, '/api/me', '/api/stream/status']) {
      const r = await a.get(p);
      assert.ok(r.status < 400, `${p} answered ${r.status}`);
    }
    assert.equal(active(a).length, 0);
    assert.equal(query(server.dbPath,
      `SELECT count(*) AS n FROM stream_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = '${a.username}'`)[0].n, 0);
  });
});
