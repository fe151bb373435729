// Removing a friend ends their listening at once: a real listener (fc25-send) hears nothing more within a second of
// DELETE /api/friends/{username}, whichever side removes, whichever server process takes the removal, and also
// when the removal lands while the listener's offer is being taken.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startRedis } from '../support/redis.mjs';
import { offer } from '../support/sdp.mjs';
import { repoRoot, sharedDir, startServer, tempDir } from '../support/server.mjs';

const sendBin = process.env.FC25_SEND || path.join(process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build'), 'tools/send/fc25-send');
const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const password = 'listen password';

// One listener for `seconds`, which goes on counting packets for 1.5 s after the server ends it.
function listen(server, user, caster, seconds = 30) {
  return new Promise((resolve, reject) => {
    execFile(sendBin, ['--port', String(server.port), '--password', password, '--listen', caster, '--user', user,
      '--seconds', String(seconds), '--after-end', '1.5'], { timeout: 90000 }, (err, stdout, stderr) => {
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => !l.summary);
      if (!lines.length) return reject(new Error(`fc25-send failed: ${err?.message}\n${stderr}`));
      resolve(lines[0]);
    });
  });
}

function broadcast(server, user) {
  return spawn(sendBin, ['--port', String(server.port), '--password', password, '--user', user, '--wav', speech,
    '--seconds', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function waitFor(fn, what, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The listener is heard, then `remover` removes the friendship (through `via`): within 1 s the listener is told
// (not_friends), receives nothing more, and the broadcaster's pages count one listener less.
async function unfriendWhileListening({ server, via = server, caster, casterWatch, listener, remover, removed }) {
  const listening = listen(server, listener.username, caster.username);
  await casterWatch.next((m) => m.type === 'listeners' && m.count === 1, 15000);
  await sleep(1500);  // audio flows
  const viaClient = new Client(via.url);
  viaClient.cookies = remover.cookies;
  const t0 = Date.now();
  const p0 = performance.now();
  const r = await viaClient.request('DELETE', `/api/friends/${removed.username}`);
  assert.equal(r.status, 200, r.text);
  const count = await casterWatch.next((m) => m.type === 'listeners' && m.count === 0, 3000);
  const result = await listening;
  assert.equal(result.error, undefined, JSON.stringify(result));
  assert.ok(result.packets_received > 50, `the listener heard the stream first (${result.packets_received} packets)`);
  assert.equal(result.ended_by_server, 'not_friends', `the listener was not ended: ${JSON.stringify(result)}`);
  const endedMs = result.ended_at_ms - t0;
  assert.ok(endedMs < 1000, `listen_ended came ${endedMs.toFixed(0)} ms after the removal`);
  assert.ok(count.receivedAt - p0 < 1000, `the broadcaster's count fell ${(count.receivedAt - p0).toFixed(0)} ms after the removal`);
  assert.equal(result.packets_after_end, 0, 'no packet reaches the listener once it is ended');
  return endedMs;
}

describe('removing a friend ends their listening', () => {
  let server, caster, casterWatch, dave, erin, cast;
  const health = async () => (await (await fetch(server.url + '/api/health')).json());

  before(async () => {
    requireTestNetwork();
    assert.ok(fs.existsSync(sendBin), `fc25-send not built at ${sendBin}`);
    server = await startServer({ env: { FC25_DENOISER: 'passthrough', FC25_MEDIA_TIMEOUT_MS: '60000' } });
    caster = new Client(server.url);
    await caster.register(uniqueName('caster'), password);
    dave = new Client(server.url);
    await dave.register(uniqueName('dave'), password);
    erin = new Client(server.url);
    await erin.register(uniqueName('erin'), password);
    await makeFriends(caster, dave);
    await makeFriends(caster, erin);
    casterWatch = caster.openPresence();  // a second page of the broadcaster's: it sees the listener count
    await casterWatch.ready;
    cast = broadcast(server, caster.username);
    await server.waitForLog(/media connected/, 15000);
  });
  after(async () => {
    cast?.kill('SIGTERM');
    await server?.stop();
  });

  it('the broadcaster removes the listener: it ends within 1 s and hears nothing more', async (t) => {
    const ms = await unfriendWhileListening({ server, caster, casterWatch, listener: dave, remover: caster, removed: dave });
    t.diagnostic(`listen_ended ${ms.toFixed(0)} ms after DELETE`);
    await waitFor(async () => (await health()).media_pipelines === 2, 'the listener\'s pipeline to go');
    assert.match(server.logs(), /listener left session=\d+ listener=\w+ \(not friends;/);
  });

  it('the listener removes the broadcaster: likewise', async (t) => {
    const ms = await unfriendWhileListening({ server, caster, casterWatch, listener: erin, remover: erin, removed: caster });
    t.diagnostic(`listen_ended ${ms.toFixed(0)} ms after DELETE`);
    await waitFor(async () => (await health()).media_pipelines === 2, 'the listener\'s pipeline to go');
  });

  it('a removal that lands while the listen_offer is being taken still ends the listener', async (t) => {
    const frank = new Client(server.url);
    await frank.register(uniqueName('frank'), password);
    const sock = frank.openPresence();
    await sock.ready;
    let answered = 0;
    for (let i = 0; i < 25; i++) {
      await makeFriends(caster, frank);
      await sock.next((m) => m.type === 'friend_added', 3000);
      // The offer and the removal leave together; the removal may land before, during or after the offer's checks.
      sock.send({ type: 'listen_offer', username: caster.username, sdp: offer({ direction: 'recvonly' }) });
      if (i % 2) await sleep(i % 5);
      const del = await caster.request('DELETE', `/api/friends/${frank.username}`);
      assert.equal(del.status, 200);
      const first = await sock.next((m) => m.type === 'listen_answer' || m.type === 'listen_ended' ||
        (m.type === 'error' && m.for === 'listen_offer'), 5000);
      if (first.type === 'error') {
        assert.equal(first.error.code, 'not_friends', JSON.stringify(first));
        continue;
      }
      if (first.type === 'listen_ended') {  // ended before its answer was ready
        assert.equal(first.reason, 'not_friends');
        await sock.next((m) => m.type === 'friend_removed', 3000);
        continue;
      }
      answered += 1;
      const ended = await sock.next((m) => m.type === 'listen_ended' && m.listen_id === first.listen_id, 1000);
      assert.equal(ended.reason, 'not_friends');
      await sock.next((m) => m.type === 'friend_removed', 3000);
    }
    t.diagnostic(`${answered} of 25 offers were answered before the removal ended them`);
    await waitFor(async () => (await health()).media_pipelines === 2, 'every listener pipeline to go', 5000);
    sock.close();
  });
});

describe('removing a friend through another server process (Redis channel layer)', () => {
  let redis, A, B, cast;
  after(async () => {
    cast?.kill('SIGTERM');
    await A?.stop();
    await B?.stop();
    await redis?.stop();
  });

  it('the process that serves the listener ends it', async (t) => {
    requireTestNetwork();
    redis = await startRedis();
    const env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
      FC25_DENOISER: 'passthrough', FC25_MEDIA_TIMEOUT_MS: '60000' };
    A = await startServer({ env });
    B = await startServer({ env, dataDir: tempDir(), db: A.dbPath });
    const caster = new Client(B.url);
    await caster.register(uniqueName('caster'), password);
    const gina = new Client(B.url);
    await gina.register(uniqueName('gina'), password);
    await makeFriends(caster, gina);
    const casterWatch = caster.openPresence();
    await casterWatch.ready;
    cast = broadcast(B, caster.username);
    await B.waitForLog(/media connected/, 15000);
    // The stream and the listener are on B; the broadcaster removes gina through A.
    const ms = await unfriendWhileListening({ server: B, via: A, caster, casterWatch, listener: gina, remover: caster, removed: gina });
    t.diagnostic(`listen_ended ${ms.toFixed(0)} ms after DELETE on the other process`);
  });
});
