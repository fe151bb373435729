import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('accounts', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  it('registers with an HttpOnly SameSite=Lax session cookie and knows the user afterwards', async () => {
    const c = new Client(server.url);
    const name = uniqueName('reg');
    const r = await c.post('/api/auth/register', { username: name, password: 'long enough' });
    assert.equal(r.status, 201);
    assert.equal(r.body.username, name);
    const cookie = r.headers.getSetCookie().find((l) => l.startsWith('fc25_session='));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    const me = await c.get('/api/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.username, name);
    assert.equal(me.body.is_streaming, false);
    assert.equal(me.body.csrf_token, c.cookies.get('fc25_csrf'));
  });

  it('stores the password as Argon2id and the session only as a hash', async () => {
    const c = new Client(server.url);
    const name = uniqueName('hash');
    await c.register(name, 'secret password');
    const [user] = query(server.dbPath, `SELECT id, password_hash FROM users WHERE username = '${name}'`);
    assert.match(user.password_hash, /^\$argon2id\$/);
    const token = c.cookies.get('fc25_session');
    assert.equal(token.length, 64);
    const sessions = query(server.dbPath, `SELECT token_hash FROM sessions WHERE user_id = ${user.id}`);
    assert.equal(sessions.length, 1);
    assert.notEqual(sessions[0].token_hash, token);
    assert.equal(query(server.dbPath, `SELECT count(*) AS n FROM sessions WHERE token_hash = '${token}'`)[0].n, 0);
  });

  it('logs in and out', async () => {
    const name = uniqueName('log');
    await new Client(server.url).register(name, 'pass word 1');
    const c = new Client(server.url);
    assert.equal((await c.login(name, 'wrong pass')).status, 401);
    const ok = await c.login(name.toUpperCase(), 'pass word 1');
    assert.equal(ok.status, 200);
    assert.equal((await c.get('/api/me')).body.username, name);
    assert.equal((await c.post('/api/auth/logout')).status, 200);
    assert.equal((await c.get('/api/me')).status, 401);
  });

  it('refuses a duplicate username, case-insensitively', async () => {
    const name = uniqueName('dup');
    await new Client(server.url).register(name);
    const r = await new Client(server.url).post('/api/auth/register', { username: name.toUpperCase(), password: 'whatever1' });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'username_taken');
    assert.equal(query(server.dbPath, `SELECT count(*) AS n FROM users WHERE username = '${name}'`)[0].n, 1);
  });

  it('refuses invalid and over-long usernames and short passwords', async () => {
    const c = new Client(server.url);
    for (const username of ['ab', 'x'.repeat(31), 'has space', 'semi;colon', 'ünïcode']) {
      const r = await c.post('/api/auth/register', { username, password: 'long enough' });
      assert.equal(r.status, 400, username);
      assert.equal(r.body.error.code, 'invalid_username');
      assert.ok(r.body.error.message.length > 0);
    }
    const r = await c.post('/api/auth/register', { username: uniqueName('pw'), password: 'short' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_password');
  });

  it('throttles after 10 failed logins in a minute with 429 and Retry-After', async () => {
    // A server of its own: failures are also counted per address, and every test client is 127.0.0.1.
    const own = await startServer();
    const name = uniqueName('thr');
    await new Client(own.url).register(name, 'the right one');
    const c = new Client(own.url);
    for (let i = 0; i < 10; i++) assert.equal((await c.login(name, `wrong ${i}`)).status, 401);
    const r = await c.login(name, 'the right one');
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, 'too_many_attempts');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    await own.stop();
  });

  it('keeps sessions across a server restart', async () => {
    const dataDir = server.dataDir;
    const c = new Client(server.url);
    const name = uniqueName('rst');
    await c.register(name);
    await server.stop();
    server = await startServer({ dataDir });
    c.baseUrl = server.url;
    const me = await c.get('/api/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.username, name);
  });
});
