// Two fc25 serve processes sharing one SQLite file and one Redis behave as one service.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { startRedis, twoProcessesWithFriends } from '../support/redis.mjs';
import { query } from '../support/sqlite.mjs';

describe('two processes with the Redis channel layer', () => {
  let pair, redis, A, B, alice, bob, bobSock;
  before(async () => {
    pair = await twoProcessesWithFriends();
    ({ redis, A, B, alice, bob, bobSock } = pair);
  });
  after(async () => { await pair?.stop(); });

  it('a friend on process B sees a stream started and stopped through process A within 1 s', async () => {
    let t0 = performance.now();
    const { body: s } = await alice.post('/api/stream/start', { client_id: 'a-tab' });
    const live = await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 1000);
    assert.ok(live.receivedAt - t0 < 1000);
    assert.equal(live.session_id, s.session_id);
    t0 = performance.now();
    await alice.post('/api/stream/stop', {});
    const ended = await bobSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 1000);
    assert.ok(ended.receivedAt - t0 < 1000);
    assert.equal(ended.end_reason, 'user');
    assert.match(A.logs(), /channel send group=user\.\S+ type=streaming_status/);
    assert.match(B.logs(), /channel receive group=user\.\S+ type=streaming_status/);
  });

  it('a stop request on B ends a stream started on A, exactly once', async () => {
    const { body: s } = await alice.post('/api/stream/start', { client_id: 'a-tab-2' });
    await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 1000);
    const aliceOnB = new Client(B.url);
    aliceOnB.cookies = new Map(alice.cookies);
    const [r1, r2] = await Promise.all([aliceOnB.post('/api/stream/stop', {}), alice.post('/api/stream/stop', {})]);
    assert.equal([r1.body.stopped, r2.body.stopped].filter(Boolean).length, 1, 'exactly one stop wins');
    await bobSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 1000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bobSock.messages.filter((m) => m.type === 'streaming_status' && !m.is_streaming && m.session_id === s.session_id).length, 1);
    const row = query(A.dbPath, `SELECT end_reason, ended_at FROM stream_sessions WHERE id = ${s.session_id}`)[0];
    assert.equal(row.end_reason, 'user');
  });

  it('pushes a friend request made on A to a socket on B', async () => {
    const carol = new Client(A.url);
    await carol.register(uniqueName('carol'));
    await carol.post('/api/friends/requests', { username: bob.username });
    const m = await bobSock.next((x) => x.type === 'friend_request', 1000);
    assert.equal(m.request.from, carol.username);
  });

  it('after Redis restarts, the processes reconnect and clients get a fresh snapshot', async () => {
    const port = redis.port;
    await redis.kill();
    redis = pair.redis = await startRedis({ port });
    const snap = await bobSock.next((m) => m.type === 'snapshot', 10000);
    assert.equal(snap.self.username, bob.username);
    // And events flow again.
    await alice.post('/api/stream/start', { client_id: 'a-tab-3' });
    await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 3000);
    await alice.post('/api/stream/stop', {});
  });
});
