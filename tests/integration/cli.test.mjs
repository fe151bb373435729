import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import path from 'node:path';
import { describe, it } from 'node:test';

import { Client } from '../support/client.mjs';
import { fc25Bin, sharedDir, startServer, tempDir } from '../support/server.mjs';

const run = (args, opts = {}) => spawnSync(fc25Bin, args, { encoding: 'utf8', ...opts });

describe('fc25 command line', () => {
  it('prints its version and help', () => {
    const v = run(['--version']);
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^fc25 \d+\.\d+\.\d+/);
    const h = run(['--help']);
    assert.equal(h.status, 0);
    for (const cmd of ['serve', 'user create', 'user list', 'denoise']) assert.ok(h.stdout.includes(cmd), cmd);
    const sh = run(['serve', '--help']);
    assert.equal(sh.status, 0);
    assert.match(sh.stdout, /FC25_PORT/);
    assert.match(sh.stdout, /CHANNEL_BACKEND/);
  });

  it('creates a user from --password-stdin who can then log in over HTTP, and lists users', async () => {
    const dir = tempDir();
    const c = run(['user', 'create', 'Operator', '--password-stdin', '--data-dir', dir], { input: 'a good password\n' });
    assert.equal(c.status, 0, c.stderr);
    const dupe = run(['user', 'create', 'operator', '--password-stdin', '--data-dir', dir], { input: 'another one\n' });
    assert.notEqual(dupe.status, 0);
    assert.match(dupe.stderr, /taken/);
    const list = run(['user', 'list', '--data-dir', dir]);
    assert.equal(list.status, 0);
    assert.equal(list.stdout.trim(), 'operator');
    const server = await startServer({ dataDir: dir });
    const client = new Client(server.url);
    assert.equal((await client.login('operator', 'a good password')).status, 200);
    assert.equal((await client.get('/api/me')).body.username, 'operator');
    await server.stop();
  });

  it('says at start-up whether lost ingest packets are rebuilt (off unless asked: it costs 20 ms)', async () => {
    for (const [env, shown] of [[{}, 'ingest_fec=0'], [{ FC25_INGEST_FEC: '1' }, 'ingest_fec=1']]) {
      const server = await startServer({ env });
      assert.ok(server.logs().includes(shown), `${JSON.stringify(env)}: start-up line has ${shown}`);
      await server.stop();
    }
  });

  it('holds the model in the weights it is asked for, and says which at start-up', async () => {
    const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
    for (const precision of ['fp32', 'bf16']) {
      const server = await startServer({ args: ['--denoiser', 'dfn3', '--model-dir', modelDir, '--precision', precision] });
      assert.ok(server.logs().includes(`precision=${precision}`), `${precision}: start-up line names it`);
      await server.waitForLog(new RegExp(`denoiser dfn3 with the model in .* \\(${precision} weights\\)`));
      await server.stop();
    }
  });

  it('hands TURN credentials to pages decoded, and a stray % and a + in them as they are', async () => {
    const server = await startServer({ args: ['--turn', 'turn://us%zzer:p%40ss+w@127.0.0.1:3478'] });
    const client = new Client(server.url);
    await client.register('turnuser1');
    const me = await client.get('/api/me');
    assert.deepEqual(me.body.ice_servers, [{ urls: 'turn:127.0.0.1:3478', username: 'us%zzer', credential: 'p@ss+w' }]);
    await server.stop();
  });

  it('names the listeners\' port when it is taken, and does not start', async () => {
    const taken = dgram.createSocket('udp4');
    await new Promise((resolve) => taken.bind(0, '0.0.0.0', resolve));
    const port = taken.address().port;
    const r = spawnSync(fc25Bin, ['serve', '--port', '0', '--data-dir', tempDir(), '--listener-port', String(port)],
      { encoding: 'utf8', timeout: 20000 });
    taken.close();
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, new RegExp(`cannot bind the listeners' media socket to [0-9.]+:${port}: Address already in use`));
  });

  it('refuses bad flags and environment values, naming them', () => {
    const dir = tempDir();
    let r = run(['serve', '--port', 'eighty', '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--port: 'eighty'/);
    r = run(['serve', '--data-dir', dir], { env: { ...process.env, CHANNEL_BACKEND: 'carrier-pigeon' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /CHANNEL_BACKEND: 'carrier-pigeon' is not one of memory, redis/);
    r = run(['serve', '--isa', 'neon', '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--isa: 'neon' is not one of auto, avx512, avx2, portable/);
    r = run(['serve', '--data-dir', dir], { env: { ...process.env, FC25_PRECISION: 'int4' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_PRECISION: 'int4' is not one of fp32, bf16/);
    r = run(['serve', '--data-dir', dir], { env: { ...process.env, FC25_PREFETCH: 'sometimes' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_PREFETCH: 'sometimes' is not one of auto, on, off/);
    r = run(['serve', '--bf16-dot', 'maybe', '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--bf16-dot: 'maybe' is not one of auto, on, off/);
    r = run(['serve', '--data-dir', dir], { env: { ...process.env, FC25_INGEST_FEC: 'yes please' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_INGEST_FEC: 'yes please'/);
    r = run(['serve', '--packet-ms', '15', '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--packet-ms: '15' is not one of auto, 10, 20/);
    r = run(['serve', '--data-dir', dir], { env: { ...process.env, FC25_LISTENER_OPUS: 'music' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_LISTENER_OPUS: 'music' is not one of lowdelay, voice/);
    r = run(['serve', '--listener-transport', 'janus', '--data-dir', dir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--listener-transport: 'janus' is not one of shared, webrtcbin/);
    r = run(['serve', '--data-dir', dir], { env: { ...process.env, FC25_LISTENER_PORT: '70000' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_LISTENER_PORT: '70000'/);
    r = run(['serve', '--frobnicate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option '--frobnicate'/);
    r = run(['launch']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command 'launch'/);
    r = run(['user', 'create', 'x', '--password-stdin', '--data-dir', path.join(dir, 'u')], { input: 'long enough\n' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /at least 3 characters/);
  });
});
