// fc25 on PostgreSQL (a real PostgreSQL 15 started by the test): the database going away and coming back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { psql, startPostgres } from '../support/postgres.mjs';
import { startServer, until } from '../support/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


describe('fc25 on PostgreSQL', () => {
  let pg, server, alice, bob, bobSock;
  before(async () => {
    pg = startPostgres();
    server = await startServer({ args: ['--database-url', pg.url, '--db-connections', '4'] });
    alice = new Client(server.url);
    await alice.register(uniqueName('alice'));
    bob = new Client(server.url);
    await bob.register(uniqueName('bob'));
    await makeFriends(alice, bob);
    bobSock = bob.openPresence();
    await bobSock.ready;
  });
  after(async () => {
    bobSock?.close();
    await server?.stop();
    pg?.down();
  });

  it('keeps its rows in PostgreSQL, migrated to the current schema', () => {
    assert.deepEqual(psql(pg.url, 'SELECT version FROM schema_version'), [{ version: 7 }]);
    const users = psql(pg.url, `SELECT username FROM users WHERE username IN ('${alice.username}', '${bob.username}') ORDER BY 1`);
    assert.equal(users.length, 2);
    assert.equal(psql(pg.url, 'SELECT count(*) AS n FROM friendships')[0].n, 2, 'one row each way');
  });

  it('while the database is stopped requests answer 503 database_unavailable and the server stays up; once it is back, all works and nothing is lost', async () => {
    const { body: live } = await alice.post('/api/stream/start', { client_id: 'a-tab' });
    assert.ok(live.session_id);
    await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 2000);

    pg.stop();
    const friends = await bob.get('/api/friends');
    assert.equal(friends.status, 503);
    assert.equal(friends.body.error.code, 'database_unavailable');
    assert.match(friends.body.error.message, /database/);
    const login = await new Client(server.url).request('POST', '/api/auth/login',
      { json: { username: alice.username, password: 'correct horse' } });
    assert.equal(login.status, 503, 'a login cannot be checked: 503, not "wrong password"');
    const health = await fetch(`${server.url}/api/health`);
    assert.equal(health.status, 200, 'the process answers what needs no database');
    await sleep(2500);   // a heartbeat or two fail meanwhile
    assert.equal(server.proc.exitCode, null, 'the server did not exit');

    pg.start();
    const back = await until(async () => {
      const r = await bob.get('/api/friends');
      return r.status === 200 ? r : null;
    }, 10000, 'requests working again');
    const a = back.body.friends.find((f) => f.username === alice.username);
    assert.equal(a.is_streaming, true, 'the stream live before the outage is still live');
    assert.equal(a.session_id, live.session_id);

    const stop = await alice.post('/api/stream/stop', {});
    assert.equal(stop.status, 200);
    const ended = await bobSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 2000);
    assert.equal(ended.end_reason, 'user');
    const [row] = psql(pg.url, `SELECT end_reason, ended_at FROM stream_sessions WHERE id = ${live.session_id}`);
    assert.equal(row.end_reason, 'user');
    assert.ok(row.ended_at > 0);
    assert.match(server.logs(), /database/i);
    assert.equal(server.proc.exitCode, null);
  });

  it('refuses to start on a database it cannot reach, naming it without the password', async () => {
    await assert.rejects(
      startServer({ args: ['--database-url', 'postgresql://fc25:hunter2@127.0.0.1:1/fc25'] }),
      (e) => {
        assert.match(e.message, /exited \(1\)/);
        assert.match(e.message, /127\.0\.0\.1:1/);
        assert.doesNotMatch(e.message, /hunter2/);
        return true;
      });
  });
});
