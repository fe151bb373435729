// Registration: passwords are measured in characters and must be UTF-8; each address may register only a few users
// per window (429 + Retry-After after that), and a login of an existing user does not wait behind the
// registrations' password hashing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { fc25Bin, startServer, tempDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const csrf = 'c'.repeat(64);

// One POST of JSON from a chosen local address (every 127.0.0.x is this machine, each a different client address).
function post(port, path, body, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const started = performance.now();
    const req = http.request({
      host: '127.0.0.1', port, path, method: 'POST', localAddress, agent: false,
      headers: {
        'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data),
        Cookie: `fc25_csrf=${csrf}`, 'X-CSRF-Token': csrf,
      },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed, ms: performance.now() - started });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('registration flood', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { FC25_REGISTRATIONS_PER_ADDRESS: '5', FC25_REGISTRATION_WINDOW_S: '600' } });
  });
  after(async () => { await server.stop(); });

  it('lets one address register 5 users per window; the rest get 429 with Retry-After and create nothing', async () => {
    const prefix = uniqueName('fl').slice(0, 20);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      post(server.port, '/api/auth/register', { username: `${prefix}_${i}`, password: 'long enough' }, '127.0.0.1')));
    const created = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 429);
    assert.equal(created.length, 5, JSON.stringify(results.map((r) => r.status)));
    assert.equal(refused.length, 35);
    for (const r of refused) {
      assert.equal(r.body.error.code, 'too_many_registrations');
      assert.match(r.body.error.message, /registrations from this address/);
      const wait = Number(r.headers['retry-after']);
      assert.ok(wait >= 500 && wait <= 601, `Retry-After ${r.headers['retry-after']}`);
    }
    const rows = query(server.dbPath, `SELECT count(*) AS n FROM users WHERE username LIKE '${prefix}_%'`);
    assert.equal(rows[0].n, 5);
  });

  it('does not make a login of an existing user wait behind registrations from 40 addresses', async () => {
    const name = uniqueName('old');
    assert.equal((await post(server.port, '/api/auth/register', { username: name, password: 'pass word 1' },
      '127.0.0.250')).status, 201);
    // What one login takes on this machine right now, with nothing else to do.
    const idle = await post(server.port, '/api/auth/login', { username: name, password: 'pass word 1' },
      '127.0.0.251');
    assert.equal(idle.status, 200);
    const prefix = uniqueName('many').slice(0, 20);
    const t0 = performance.now();
    const flood = Promise.all(Array.from({ length: 40 }, (_, i) =>
      post(server.port, '/api/auth/register', { username: `${prefix}_${i}`, password: 'long enough' },
        `127.0.0.${i + 2}`)));
    await new Promise((r) => setTimeout(r, 100));  // the registrations are queued by now
    const login = await post(server.port, '/api/auth/login', { username: name, password: 'pass word 1' },
      '127.0.0.251');
    const results = await flood;
    const floodMs = performance.now() - t0;
    assert.equal(login.status, 200, JSON.stringify(login.body));
    // Every address is within its budget: all 40 are created (they are hashed one after another).
    assert.deepEqual(results.map((r) => r.status), Array(40).fill(201));
    console.log(`login took ${login.ms.toFixed(0)} ms while 40 registrations took ${floodMs.toFixed(0)} ms `
      + `(${idle.ms.toFixed(0)} ms alone)`);
    // It did not wait for the queue: about what a login takes alone (sharing the cores with the registrations),
    // far below the registrations' total.
    assert.ok(login.ms < Math.max(1500, 3 * idle.ms), `login took ${login.ms.toFixed(0)} ms (${idle.ms.toFixed(0)} ms alone)`);
    assert.ok(login.ms < floodMs / 4, `login ${login.ms.toFixed(0)} ms vs registrations ${floodMs.toFixed(0)} ms`);
  });
});

describe('password length', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  it('counts characters, not bytes', async () => {
    const c = new Client(server.url);
    // Five characters in ten bytes: too short.
    const short = await c.post('/api/auth/register', { username: uniqueName('pw'), password: 'ééééé' });
    assert.equal(short.status, 400);
    assert.equal(short.body.error.code, 'invalid_password');
    assert.match(short.body.error.message, /at least 8 characters/);
    // A hundred characters in two hundred bytes: allowed, and it logs in.
    const name = uniqueName('pw');
    const long = await c.post('/api/auth/register', { username: name, password: 'é'.repeat(100) });
    assert.equal(long.status, 201, JSON.stringify(long.body));
    assert.equal((await new Client(server.url).login(name, 'é'.repeat(100))).status, 200);
    const tooLong = await c.post('/api/auth/register', { username: uniqueName('pw'), password: 'é'.repeat(129) });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.body.error.message, /at most 128 characters/);
  });

  it('refuses a password that is not UTF-8 (fc25 user create) with a message saying so', () => {
    const dir = tempDir();
    const r = spawnSync(fc25Bin, ['user', 'create', 'bytes', '--password-stdin', '--data-dir', dir],
      { input: Buffer.from([0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0xff, 0x0a]) });
    assert.equal(r.status, 2, String(r.stderr));
    assert.match(String(r.stderr), /password is not valid UTF-8/);
  });
});
