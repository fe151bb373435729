// The disk fills up while a friend is live (a real, small tmpfs as the server's data directory, in a mount
// namespace of the server's own; fc25-send broadcasts real WebRTC audio): the stream ends by itself with
// recording_failed within a couple of seconds, its friend and its own pages are told why, the recording that made
// it to the disk is a valid WAV with its database row, the error is logged once, not every 50 ms, and going live
// again is refused with 507 while free space is below FC25_MIN_FREE_MB.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { readWav } from '../support/audio.mjs';
import { requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { repoRoot, sharedDir, startServer, tempDir } from '../support/server.mjs';

const sendBin = process.env.FC25_SEND || path.join(process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build'), 'tools/send/fc25-send');
const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A WAV whose RIFF and data sizes match the bytes in the file (what players check), 16-bit mono 48 kHz.
function checkWav(file) {
  const b = fs.readFileSync(file);
  assert.equal(b.toString('latin1', 0, 4), 'RIFF');
  assert.equal(b.readUInt32LE(4), b.length - 8, 'RIFF size = file size - 8');
  let pos = 12, data = null, fmt = null;
  while (pos + 8 <= b.length) {
    const id = b.toString('latin1', pos, pos + 4), size = b.readUInt32LE(pos + 4);
    if (id === 'fmt ') fmt = { channels: b.readUInt16LE(pos + 10), rate: b.readUInt32LE(pos + 12), bits: b.readUInt16LE(pos + 22) };
    if (id === 'data') { data = { at: pos + 8, size }; break; }
    pos += 8 + size + (size & 1);
  }
  assert.deepEqual(fmt, { channels: 1, rate: 48000, bits: 16 });
  assert.ok(data, 'a data chunk');
  assert.equal(data.at + data.size, b.length, 'the data chunk ends where the file ends');
  assert.equal(data.size % 2, 0, 'no torn sample');
  return data.size / 2;
}

// The server's database, read inside its mount namespace (sqlite3 resolves /proc/PID/root to the host's /).
function query(pid, dbPath, sql) {
  const out = execFileSync('nsenter', [`--mount=/proc/${pid}/ns/mnt`, 'sqlite3', '-json', dbPath, sql],
    { encoding: 'utf8' }).trim();
  return out ? JSON.parse(out) : [];
}

// Writes until the disk is full; returns the bytes written.
function fill(file) {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  try {
    for (;;) written += fs.writeSync(fd, chunk);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

describe('a full disk while live', () => {
  let server, inside;
  before(async () => {
    requireTestNetwork();
    assert.ok(fs.existsSync(sendBin), `fc25-send not built at ${sendBin}`);
    const dataDir = tempDir('fc25-full-');
    server = await startServer({
      dataDir,
      // A 24 MiB tmpfs over the data directory, seen only by the server (and by us through /proc/PID/root).
      wrap: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
        'mount -t tmpfs -o size=24m fc25-full "$1" && shift && exec "$@"', 'sh', dataDir],
      env: { FC25_MODEL_DIR: modelDir, FC25_MIN_FREE_MB: '8', FC25_MEDIA_TIMEOUT_MS: '20000' },
    });
    inside = (p) => `/proc/${server.proc.pid}/root${p}`;
  });
  after(async () => { await server?.stop(); });

  it('ends the stream with recording_failed, tells friends and the page, keeps a valid WAV and refuses Go live with 507', async () => {
    const alice = new Client(server.url);
    await alice.register(uniqueName('alice'), 'correct horse');
    const bob = new Client(server.url);
    await bob.register(uniqueName('bob'));
    await makeFriends(alice, bob);
    const bobSock = bob.openPresence();
    const aliceSock = alice.openPresence();
    await bobSock.ready;
    await aliceSock.ready;

    const sent = new Promise((resolve) => {
      execFile(sendBin, ['--port', String(server.port), '--wav', speech, '--user', alice.username,
        '--password', 'correct horse', '--seconds', '40'], { timeout: 90000 }, (err, stdout) => resolve(stdout));
    });
    const live = await bobSock.next((m) => m.type === 'streaming_status' && m.is_streaming, 15000);
    const wav = inside(path.join(server.dataDir, 'streamed_audios', `${alice.username}_${live.session_id}.wav`));
    // Audio is being recorded.
    const end = Date.now() + 15000;
    while (Date.now() < end && !(fs.existsSync(wav) && fs.statSync(wav).size > 200000)) await sleep(100);
    assert.ok(fs.statSync(wav).size > 200000, 'the recording grows');

    const logFrom = server.logs().length;
    const filled = fill(inside(path.join(server.dataDir, 'filler')));
    const fullAt = performance.now();
    assert.ok(filled > 1 << 20);

    // Friends and the broadcaster's own pages: not live any more, and why.
    const ended = await bobSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 5000);
    const took = ended.receivedAt - fullAt;
    console.log(`stream ended ${took.toFixed(0)} ms after the disk filled`);
    assert.ok(took < 3000, `ended ${took.toFixed(0)} ms after the disk filled`);
    assert.equal(ended.session_id, live.session_id);
    assert.equal(ended.end_reason, 'recording_failed');
    const own = await aliceSock.next((m) => m.type === 'streaming_status' && !m.is_streaming, 2000);
    assert.equal(own.end_reason, 'recording_failed');
    const status = await bob.get(`/api/stream/status?username=${alice.username}`);
    assert.equal(status.body.is_streaming, false);

    // What reached the disk is a valid WAV, with its row.
    const db = server.dbPath;
    const session = query(server.proc.pid, db, `SELECT end_reason, ended_at FROM stream_sessions WHERE id = ${live.session_id}`)[0];
    assert.equal(session.end_reason, 'recording_failed');
    const rec = query(server.proc.pid, db, `SELECT * FROM stream_recordings WHERE session_id = ${live.session_id}`)[0];
    assert.ok(rec, 'the recording has its row');
    const samples = checkWav(wav);
    assert.ok(samples > 48000, `${samples / 48000} s of audio kept`);
    assert.equal(rec.bytes, fs.statSync(wav).size);
    assert.ok(Math.abs(rec.duration_ms - samples / 48) <= 1, `row says ${rec.duration_ms} ms, file holds ${samples / 48} ms`);
    assert.equal(readWav(wav).samples.length, samples);
    const playing = await alice.get(`/media/recordings/${rec.id}.wav`);
    assert.equal(playing.status, 200);

    // Said once, not every 50 ms.
    await sleep(2000);
    const lines = server.logs().slice(logFrom).split('\n').filter((l) => /recording session=\d+ failed|cannot write/.test(l));
    assert.ok(lines.length >= 1 && lines.length <= 2, lines.join('\n'));

    // fc25-send saw its stream end.
    const out = await sent;
    assert.match(out, /"ended_by_server":"recording_failed"/);

    // Going live again: refused while the disk is below the floor, before anything is created.
    const sessionsBefore = query(server.proc.pid, db, 'SELECT count(*) AS n FROM stream_sessions')[0].n;
    const refused = await alice.post('/api/stream/start', { client_id: 'tab-2' });
    assert.equal(refused.status, 507);
    assert.equal(refused.body.error.code, 'insufficient_storage');
    assert.match(refused.body.error.message, /disk is nearly full.*MiB free.*needs 8 MiB/);
    assert.equal(query(server.proc.pid, db, 'SELECT count(*) AS n FROM stream_sessions')[0].n, sessionsBefore);
    // With space again, it works.
    fs.rmSync(inside(path.join(server.dataDir, 'filler')));
    const again = await alice.post('/api/stream/start', { client_id: 'tab-2' });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal((await alice.post('/api/stream/stop', {})).body.stopped, true);
    bobSock.close();
    aliceSock.close();
    assert.equal(await server.stop(), 0, 'a clean shutdown');
  });
});
