// A stream never outlives its server: SIGTERM ends it cleanly; a crash is repaired at the next start.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('server shutdown and crash', () => {
  it('SIGTERM with a live stream: exits 0, the session ends server_shutdown, and the friend is told first', async () => {
    const server = await startServer();
    const [a, b] = [new Client(server.url), new Client(server.url)];
    await a.register(uniqueName('sa'));
    await b.register(uniqueName('sb'));
    await makeFriends(a, b);
    const bSock = b.openPresence();
    await bSock.ready;
    const { body: s } = await a.post('/api/stream/start', { client_id: 'tab' });
    await bSock.next((m) => m.type === 'streaming_status' && m.is_streaming);
    const code = await server.stop('SIGTERM');
    assert.equal(code, 0);
    const ended = bSock.messages.find((m) => m.type === 'streaming_status' && !m.is_streaming);
    assert.ok(ended, `friend was not told; got ${JSON.stringify(bSock.messages)}`);
    assert.equal(ended.end_reason, 'server_shutdown');
    assert.equal(await bSock.closed, 1001);
    const row = query(server.dbPath, `SELECT end_reason, ended_at FROM stream_sessions WHERE id = ${s.session_id}`)[0];
    assert.equal(row.end_reason, 'server_shutdown');
    assert.equal(query(server.dbPath, 'SELECT count(*) AS n FROM active_streams')[0].n, 0);
    assert.equal(query(server.dbPath, `SELECT is_streaming FROM users WHERE username = '${a.username}'`)[0].is_streaming, 0);
    assert.match(server.logs(), /stream stopped user=\S+ session=\d+ reason=server_shutdown/);
  });

  it('SIGKILL with a live stream: the next start ends it with server_restart', async () => {
    const first = await startServer();
    const a = new Client(first.url);
    await a.register(uniqueName('ka'));
    const { body: s } = await a.post('/api/stream/start', { client_id: 'tab' });
    await first.kill();
    assert.equal(query(first.dbPath, 'SELECT count(*) AS n FROM active_streams')[0].n, 1, 'the crash left it live');
    const second = await startServer({ dataDir: first.dataDir });
    const row = query(second.dbPath, `SELECT end_reason, ended_at FROM stream_sessions WHERE id = ${s.session_id}`)[0];
    assert.equal(row.end_reason, 'server_restart');
    assert.equal(query(second.dbPath, 'SELECT count(*) AS n FROM active_streams')[0].n, 0);
    a.baseUrl = second.url;
    assert.equal((await a.get('/api/me')).body.is_streaming, false);
    await second.stop();
  });
});
