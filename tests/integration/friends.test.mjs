import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('friends', () => {
  let server;
  const user = async (p) => { const c = new Client(server.url); await c.register(uniqueName(p)); return c; };
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  it('sends a request that the other user sees pushed and listed, and accepting makes friends both ways', async () => {
    const [a, b] = [await user('fa'), await user('fb')];
    const bSocket = b.openPresence();
    await bSocket.ready;
    await bSocket.next((m) => m.type === 'snapshot');
    const r = await a.post('/api/friends/requests', { username: b.username });
    assert.equal(r.status, 201);
    const pushed = await bSocket.next((m) => m.type === 'friend_request');
    assert.equal(pushed.request.from, a.username);
    assert.equal(pushed.request.id, r.body.request.id);
    const lists = await b.get('/api/friends/requests');
    assert.deepEqual(lists.body.incoming.map((x) => x.from), [a.username]);
    assert.deepEqual((await a.get('/api/friends/requests')).body.outgoing.map((x) => x.to), [b.username]);

    const aSocket = a.openPresence();
    await aSocket.ready;
    const acc = await b.post(`/api/friends/requests/${r.body.request.id}/accept`);
    assert.equal(acc.status, 200);
    assert.equal((await aSocket.next((m) => m.type === 'friend_added')).friend.username, b.username);
    assert.deepEqual((await a.get('/api/friends')).body.friends.map((f) => f.username), [b.username]);
    assert.deepEqual((await b.get('/api/friends')).body.friends.map((f) => f.username), [a.username]);
    assert.equal((await b.get('/api/friends/requests')).body.incoming.length, 0);
    aSocket.close();
    bSocket.close();
  });

  it('declines and cancels requests, and only the right side may act', async () => {
    const [a, b, c] = [await user('da'), await user('db'), await user('dc')];
    const r1 = await a.post('/api/friends/requests', { username: b.username });
    assert.equal((await a.post(`/api/friends/requests/${r1.body.request.id}/accept`)).status, 404, 'sender cannot accept');
    assert.equal((await c.post(`/api/friends/requests/${r1.body.request.id}/decline`)).status, 404, 'stranger cannot decline');
    assert.equal((await b.post(`/api/friends/requests/${r1.body.request.id}/decline`)).status, 200);
    assert.equal((await a.get('/api/friends')).body.friends.length, 0);
    const r2 = await a.post('/api/friends/requests', { username: c.username });
    assert.equal((await c.post(`/api/friends/requests/${r2.body.request.id}/cancel`)).status, 404, 'recipient cannot cancel');
    assert.equal((await a.post(`/api/friends/requests/${r2.body.request.id}/cancel`)).status, 200);
    assert.equal((await c.get('/api/friends/requests')).body.incoming.length, 0);
    const rows = query(server.dbPath, `SELECT status FROM friend_requests WHERE id IN (${r1.body.request.id}, ${r2.body.request.id}) ORDER BY id`);
    assert.deepEqual(rows.map((x) => x.status), ['declined', 'cancelled']);
  });

  it('asking someone who already asked you makes the friendship', async () => {
    const [a, b] = [await user('ma'), await user('mb')];
    await a.post('/api/friends/requests', { username: b.username });
    const r = await b.post('/api/friends/requests', { username: a.username });
    assert.equal(r.status, 200);
    assert.equal(r.body.friend, a.username);
    assert.deepEqual((await a.get('/api/friends')).body.friends.map((f) => f.username), [b.username]);
  });

  it('removes a friend, telling the other side', async () => {
    const [a, b] = [await user('ra'), await user('rb')];
    await makeFriends(a, b);
    const bSocket = b.openPresence();
    await bSocket.ready;
    assert.equal((await a.del(`/api/friends/${b.username}`)).status, 200);
    assert.equal((await bSocket.next((m) => m.type === 'friend_removed')).username, a.username);
    assert.equal((await b.get('/api/friends')).body.friends.length, 0);
    assert.equal((await a.get(`/api/stream/status?username=${b.username}`)).status, 403);
    bSocket.close();
  });

  it('refuses requests to oneself, to unknown users, duplicates and to friends', async () => {
    const [a, b] = [await user('xa'), await user('xb')];
    let r = await a.post('/api/friends/requests', { username: a.username });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'self_request');
    r = await a.post('/api/friends/requests', { username: 'nobody_by_this_name' });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'unknown_user');
    assert.equal((await a.post('/api/friends/requests', { username: b.username })).status, 201);
    r = await a.post('/api/friends/requests', { username: b.username });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'duplicate_request');
    const id = (await b.get('/api/friends/requests')).body.incoming[0].id;
    await b.post(`/api/friends/requests/${id}/accept`);
    r = await a.post('/api/friends/requests', { username: b.username });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'already_friends');
  });
});
