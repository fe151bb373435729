// Behind a proxy (HAProxy in front of the nodes, deploy/haproxy.cfg) every request comes from the proxy's address.
// With FC25_TRUSTED_PROXIES the server takes the client's address from the X-Forwarded-For the proxy appended:
// the per-address registration limit then counts browsers, not the proxy; the left-hand entries a client wrote
// itself count for nothing; and without the setting the header is ignored.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { fc25Bin, startServer, tempDir } from '../support/server.mjs';

const register = (server, forwardedFor) => new Client(server.url).post('/api/auth/register',
  { username: uniqueName('u'), password: 'correct horse' }, { headers: forwardedFor ? { 'X-Forwarded-For': forwardedFor } : {} });

describe('X-Forwarded-For from a trusted proxy', () => {
  let behind, direct;
  before(async () => {
    behind = await startServer({ args: ['--trusted-proxies', '127.0.0.1', '--registrations-per-address', '1'] });
    direct = await startServer({ args: ['--registrations-per-address', '1'] });
  });
  after(async () => {
    await behind?.stop();
    await direct?.stop();
  });

  it('limits registrations per browser address, the one the proxy appended', async () => {
    assert.equal((await register(behind, '192.0.2.1')).status, 201);
    const again = await register(behind, '192.0.2.1');
    assert.equal(again.status, 429);
    assert.equal(again.body.error.code, 'too_many_registrations');
    await behind.waitForLog(/registration throttled addr=192\.0\.2\.1\b/);
    assert.equal((await register(behind, '192.0.2.2')).status, 201, 'another browser behind the same proxy');
    // A client that writes its own X-Forwarded-For: the proxy appends the real address, which is what counts.
    assert.equal((await register(behind, '198.51.100.7, 192.0.2.3')).status, 201);
    assert.equal((await register(behind, '198.51.100.8, 192.0.2.3')).status, 429, 'the spoofed entry changes nothing');
    assert.equal((await register(behind, 'not-an-address')).status, 201, 'a value that is not an address: the proxy\'s own');
    assert.equal((await register(behind, 'not-an-address')).status, 429);
  });

  it('a request forwarded for a remote browser is not a loopback one (GET /api/cluster)', async () => {
    assert.equal((await fetch(`${behind.url}/api/cluster`)).status, 200, 'the proxy host itself, on loopback');
    const remote = await fetch(`${behind.url}/api/cluster`, { headers: { 'X-Forwarded-For': '192.0.2.50' } });
    assert.equal(remote.status, 403);
    assert.equal((await remote.json()).error.code, 'forbidden');
  });

  it('is ignored from a peer that is not a trusted proxy', async () => {
    assert.equal((await register(direct, '192.0.2.1')).status, 201);
    assert.equal((await register(direct, '192.0.2.2')).status, 429, 'one address: the connection\'s');
  });

  it('refuses a setting that is not a list of addresses, naming it', () => {
    const r = spawnSync(fc25Bin, ['serve', '--data-dir', tempDir()], { encoding: 'utf8',
      env: { ...process.env, FC25_TRUSTED_PROXIES: '10.0.0.1,haproxy.internal' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TRUSTED_PROXIES: 'haproxy\.internal' is not an IP address/);
  });
});
