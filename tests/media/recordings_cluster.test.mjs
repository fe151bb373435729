// Recordings from any node: two fc25 serve nodes on one real PostgreSQL and one real Redis, each with a disk of
// its own. Alice streams on node A (fc25-send), so her recording's file is on A's disk; bob, a friend whose requests
// go to node B, lists it, plays it (whole, a Range of it, HEAD), downloads it and sees its waveform through B, which
// asks A for the bytes. While A is frozen or gone, B answers 503 recording_unavailable within about 2 s, and again
// plays it once A is back. Deleting it through B deletes A's files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { psql, startPostgres } from '../support/postgres.mjs';
import { startRedis } from '../support/redis.mjs';
import { runSend, sendBin } from '../support/send.mjs';
import { sharedDir, startServer, tempDir, until } from '../support/server.mjs';

const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const secret = 'recordings-test-cluster-secret';
const password = 'recordings password';
const health = async (s) => (await (await fetch(`${s.url}/api/health`)).json());

// A GET or HEAD with bob's cookies, the body as bytes.
async function fetchBytes(client, url, headers = {}, method = 'GET') {
  const started = Date.now();
  const res = await fetch(client.baseUrl + url, { method, headers: { Cookie: client.cookieHeader(), ...headers } });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, ms: Date.now() - started,
    json: () => JSON.parse(body.toString()) };
}

describe('recordings from any node of a cluster', () => {
  let pg, redis, A, B, alice, bob, rec;
  const env = (redisPort) => ({ CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redisPort),
    FC25_CLUSTER_SECRET: secret, FC25_DENOISER: 'passthrough', FC25_RECORD_RAW: '1' });

  before(async () => {
    requireTestNetwork();
    assert.ok(fs.existsSync(sendBin), `fc25-send not built at ${sendBin}`);
    pg = startPostgres();
    redis = await startRedis();
    A = await startServer({ env: env(redis.port), dataDir: tempDir(), args: ['--database-url', pg.url] });
    B = await startServer({ env: env(redis.port), dataDir: tempDir(), args: ['--database-url', pg.url] });
    await until(async () => (await health(A)).cluster_nodes === 2 && (await health(B)).cluster_nodes === 2, 5000,
      'both nodes in the cluster');
    alice = new Client(A.url);
    await alice.register(uniqueName('alice'), password);
    bob = new Client(B.url);
    await bob.register(uniqueName('bob'), password);
    await makeFriends(alice, bob);
    // About 3 s of her speech, recorded on A.
    const lines = await runSend(A, password, ['--user', alice.username, '--wav', speech, '--seconds', '3']);
    assert.equal(lines.filter((l) => l.error).length, 0, JSON.stringify(lines));
    rec = await until(async () => (await bob.get(`/api/recordings?username=${alice.username}`)).body.recordings?.[0],
      10000, 'her recording listed on B');
  });
  after(async () => {
    await A?.stop();
    await B?.stop();
    await redis?.stop();
    pg?.down();
  });

  it('bob plays, seeks, downloads and sees the waveform of her recording through B; the bytes are A\'s', async (t) => {
    const onA = path.join(A.dataDir, 'streamed_audios', `${alice.username}_${rec.session_id}.wav`);
    assert.ok(fs.existsSync(onA), 'the file is on A\'s disk');
    assert.ok(!fs.existsSync(path.join(B.dataDir, 'streamed_audios', path.basename(onA))), 'and not on B\'s');
    const [row] = psql(pg.url, `SELECT disk_id, raw_bytes FROM stream_recordings WHERE id = ${rec.id}`);
    assert.equal(row.disk_id, fs.readFileSync(path.join(A.dataDir, 'streamed_audios/.disk-id'), 'utf8').trim(),
      'the row names A\'s disk');
    assert.ok(rec.raw_url, 'the raw twin is known on B (its size is in the row)');
    const file = fs.readFileSync(onA);

    const whole = await fetchBytes(bob, rec.url);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'audio/wav');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.ok(whole.body.equals(file), `B answered A's ${file.length} bytes (got ${whole.body.length})`);
    assert.equal(whole.headers.get('set-cookie'), null, 'no cookie of A\'s reaches bob');
    t.diagnostic(`${file.length} bytes through B in ${whole.ms} ms`);

    const part = await fetchBytes(bob, rec.url, { Range: 'bytes=44-1043' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 44-1043/${file.length}`);
    assert.ok(part.body.equals(file.subarray(44, 1044)));
    const tail = await fetchBytes(bob, rec.url, { Range: 'bytes=-100' });
    assert.equal(tail.status, 206);
    assert.ok(tail.body.equals(file.subarray(file.length - 100)));
    const beyond = await fetchBytes(bob, rec.url, { Range: `bytes=${file.length + 10}-` });
    assert.equal(beyond.status, 416, 'A\'s answer to a range past the end reaches bob as it is');
    const head = await fetchBytes(bob, rec.url, {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(file.length));
    assert.equal(head.body.length, 0);

    const download = await fetchBytes(bob, rec.download_url);
    assert.match(download.headers.get('content-disposition'), new RegExp(`^attachment; filename="fc25-${alice.username}-`));
    const raw = await fetchBytes(bob, rec.raw_url);
    assert.equal(raw.status, 200);
    assert.ok(raw.body.equals(fs.readFileSync(onA.replace(/\.wav$/, '_raw.wav'))), 'the raw twin, from A');

    const peaksB = (await bob.get(`/api/recordings/${rec.id}/peaks?buckets=50`)).body;
    const peaksA = (await alice.get(`/api/recordings/${rec.id}/peaks?buckets=50`)).body;
    assert.equal(peaksB.peaks.length, 50);
    assert.deepEqual(peaksB, peaksA, 'the waveform through B is the one A computes');
    assert.ok(Math.max(...peaksB.peaks) > 0.05, 'of her speech, not silence');

    // A stranger gets nothing through B either: B checks who may see it before asking A.
    const eve = new Client(B.url);
    await eve.register(uniqueName('eve'), password);
    assert.equal((await fetchBytes(eve, rec.url)).status, 404);
    // A's internal door wants the cluster secret.
    const direct = await fetch(`${A.url}/internal${rec.url}`);
    assert.equal(direct.status, 401);
    assert.equal((await direct.json()).error.code, 'cluster_secret_required');
    const wrong = await fetch(`${A.url}/internal${rec.url}`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
  });

  it('while A is frozen, then gone, B answers 503 recording_unavailable within about 2 s; A back, it plays', async (t) => {
    // Frozen: A's lease still current, its socket accepts, nothing answers: B gives up after 2 s.
    process.kill(A.proc.pid, 'SIGSTOP');
    try {
      const frozen = await fetchBytes(bob, rec.url);
      t.diagnostic(`frozen A: ${frozen.status} in ${frozen.ms} ms`);
      assert.equal(frozen.status, 503);
      assert.equal(frozen.json().error.code, 'recording_unavailable');
      assert.match(frozen.json().error.message, /did not answer/);
      assert.ok(frozen.ms >= 1500 && frozen.ms < 3500, `answered after ${frozen.ms} ms`);
      // Its lease lapses: B no longer asks it, and says so at once.
      await until(async () => (await health(B)).cluster_nodes === 1, 10000, 'B sees A gone');
      const gone = await fetchBytes(bob, rec.url);
      t.diagnostic(`A gone: ${gone.status} in ${gone.ms} ms`);
      assert.equal(gone.status, 503);
      assert.match(gone.json().error.message, /not running now/);
      assert.ok(gone.ms < 1000, `answered in ${gone.ms} ms`);
      const del = await bob.del(`/api/recordings/${rec.id}`);
      assert.equal(del.status, 403, 'not bob\'s to delete');
      const aliceOnB = new Client(B.url);
      await aliceOnB.login(alice.username, password);
      const held = await aliceOnB.del(`/api/recordings/${rec.id}`);
      assert.equal(held.status, 503, 'not deleted while its files cannot go with it');
      assert.equal(held.body.error.code, 'recording_unavailable');
      assert.equal(psql(pg.url, `SELECT count(*)::int AS n FROM stream_recordings WHERE id = ${rec.id}`)[0].n, 1);
    } finally {
      process.kill(A.proc.pid, 'SIGCONT');
    }
    await until(async () => (await health(B)).cluster_nodes === 2, 10000, 'B sees A again');
    const back = await fetchBytes(bob, rec.url);
    assert.equal(back.status, 200);
    assert.equal(B.proc.exitCode, null, 'B ran throughout');
  });

  it('alice deletes it through B: A removes its files and the row goes', async () => {
    const aliceOnB = new Client(B.url);
    await aliceOnB.login(alice.username, password);
    const onA = path.join(A.dataDir, 'streamed_audios', `${alice.username}_${rec.session_id}.wav`);
    const res = await aliceOnB.del(`/api/recordings/${rec.id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(!fs.existsSync(onA), 'the file is gone from A');
    assert.ok(!fs.existsSync(onA.replace(/\.wav$/, '_raw.wav')), 'and its raw twin');
    assert.equal(psql(pg.url, `SELECT count(*)::int AS n FROM stream_recordings WHERE id = ${rec.id}`)[0].n, 0);
    assert.match(A.logs(), new RegExp(`deleted recording ${rec.id} .* \\(asked by the node of disk \\w+\\)`));
    assert.equal((await fetchBytes(bob, rec.url)).status, 404);
  });
});
