// A node's death in a cluster (three fc25 serve processes, one database, one real Redis): alice streams into A
// (fc25-send), bob watches from B; A is killed. The survivors see A's lease lapse and one of them ends her stream
// (node_lost) and tells bob, within 6 s of the kill; when A starts again it repairs the recording and lists it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startRedis } from '../support/redis.mjs';
import { repoRoot, sharedDir, startServer, tempDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const sendBin = process.env.FC25_SEND || path.join(process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build'), 'tools/send/fc25-send');
const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('a node dies mid-stream', () => {
  let redis, A, B, C, env, alice, bob, bobSock, sender;
  before(async () => {
    requireTestNetwork();
    assert.ok(fs.existsSync(sendBin), `fc25-send not built at ${sendBin}`);
    redis = await startRedis();
    env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), FC25_DENOISER: 'passthrough' };
    A = await startServer({ env, dataDir: tempDir() });
    B = await startServer({ env, dataDir: tempDir(), db: A.dbPath });
    C = await startServer({ env, dataDir: tempDir(), db: A.dbPath });
    alice = new Client(A.url);
    await alice.register(uniqueName('alice'));
    bob = new Client(B.url);
    await bob.register(uniqueName('bob'));
    await makeFriends(alice, bob);
    bobSock = bob.openPresence();
    await bobSock.ready;
  });
  after(async () => {
    sender?.kill('SIGKILL');
    bobSock?.close();
    for (const s of [A, B, C]) await s?.stop();
    await redis?.stop();
  });

  it('friends see the stream end node_lost within 6 s, ended exactly once; the restarted node keeps the recording', async () => {
    sender = execFile(sendBin, ['--port', String(A.port), '--wav', speech, '--user', alice.username,
      '--password', 'correct horse', '--seconds', '60', '--no-stop'], { timeout: 120000 }, () => {});
    const live = await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 15000);
    await sleep(3000);   // three seconds of audio reach A's disk

    await A.kill();
    const killedAt = performance.now();
    sender.kill('SIGKILL');
    const ended = await bobSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 8000);
    const after = ended.receivedAt - killedAt;
    assert.equal(ended.end_reason, 'node_lost');
    assert.equal(ended.session_id, live.session_id);
    assert.ok(after <= 6000, `bob was told ${after.toFixed(0)} ms after the kill`);
    await sleep(1500);
    assert.equal(bobSock.messages.filter((m) => m.type === 'streaming_status' && !m.is_streaming &&
      m.session_id === live.session_id).length, 1, 'told once');
    const stopped = new RegExp(`stream stopped user=\\S+ session=${live.session_id} reason=node_lost`);
    const enders = [B, C].filter((s) => stopped.test(s.logs()));
    assert.equal(enders.length, 1, 'one survivor ended it');
    const [row] = query(A.dbPath, `SELECT end_reason FROM stream_sessions WHERE id = ${live.session_id}`);
    assert.equal(row.end_reason, 'node_lost');
    assert.equal(query(A.dbPath, `SELECT count(*) AS n FROM stream_recordings WHERE session_id = ${live.session_id}`)[0].n, 0,
      'A\'s disk is not the survivors\': no recording yet');

    // A starts again on its own data directory: the file its crash left is repaired and listed.
    A = await startServer({ env, dataDir: A.dataDir, db: A.dbPath });
    await A.waitForLog(/recovered 1 recordings/);
    alice.baseUrl = B.url;
    const list = await alice.get('/api/recordings');
    const rec = list.body.recordings.find((r) => r.session_id === live.session_id);
    assert.ok(rec, 'listed (through another node: one database)');
    assert.equal(rec.end_reason, 'node_lost');
    assert.ok(rec.duration_s >= 2, `the audio up to the kill is kept (${rec.duration_s} s)`);
  });
});
