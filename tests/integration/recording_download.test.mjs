// Recordings are sent from disk as the client reads them: a 300 MB file downloaded four times at once costs the
// server no more memory than a small one, and HEAD tells the length a GET would send.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const SIZE = 300 * 1024 * 1024;

function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) / 1024;
}

// A WAV header for `bytes` of 16-bit mono 48 kHz audio.
function wavHeader(bytes) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + bytes, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(48000, 24);
  h.writeUInt32LE(96000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write('data', 36);
  h.writeUInt32LE(bytes, 40);
  return h;
}

describe('recording download', () => {
  let server;
  let alice;
  let bob;
  let url;
  let file;
  before(async () => {
    server = await startServer({ env: { FC25_HTTP_TIMEOUT_S: '2' } });
    alice = new Client(server.url);
    bob = new Client(server.url);
    await alice.register(uniqueName('dl'));
    await bob.register(uniqueName('dl'));
    await makeFriends(alice, bob);
    const started = await alice.post('/api/stream/start', { client_id: 'tab1' });
    assert.equal(started.status, 201, started.text);
    assert.equal((await alice.post('/api/stream/stop', {})).status, 200);
    // A long recording: a sparse file, so the test costs no disk; a marked stretch to check ranges by.
    file = path.join(server.dataDir, 'streamed_audios', `${alice.username}_${started.body.session_id}.wav`);
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, wavHeader(SIZE - 44), 0, 44, 0);
    const mark = Buffer.from(Array.from({ length: 100 }, (_, i) => (i * 7 + 3) & 0xff));
    fs.writeSync(fd, mark, 0, 100, 1000);
    fs.ftruncateSync(fd, SIZE);
    fs.closeSync(fd);
    const user = query(server.dbPath, `SELECT id FROM users WHERE username='${alice.username}'`)[0];
    query(server.dbPath, `INSERT INTO stream_recordings (session_id, user_id, path, duration_ms, bytes, created_at)
      VALUES (${started.body.session_id}, ${user.id}, 'streamed_audios/${path.basename(file)}', 1000, ${SIZE}, 0)`);
    const list = await bob.get(`/api/recordings?username=${alice.username}`);
    assert.equal(list.status, 200, list.text);
    url = list.body.recordings[0].url;
  });
  after(async () => { await server.stop(); });

  it('HEAD answers the length a GET sends, whole and ranged', async () => {
    const head = await fetch(server.url + url, { method: 'HEAD', headers: { Cookie: bob.cookieHeader() } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(SIZE));
    assert.equal(head.headers.get('accept-ranges'), 'bytes');
    const ranged = await fetch(server.url + url, { method: 'HEAD', headers: { Cookie: bob.cookieHeader(), Range: 'bytes=1000-1099' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-length'), '100');
    assert.equal(ranged.headers.get('content-range'), `bytes 1000-1099/${SIZE}`);
  });

  it('a range is the bytes of the file', async () => {
    const r = await fetch(server.url + url, { headers: { Cookie: bob.cookieHeader(), Range: 'bytes=1000-1099' } });
    assert.equal(r.status, 206);
    const got = Buffer.from(await r.arrayBuffer());
    const fd = fs.openSync(file, 'r');
    const want = Buffer.alloc(100);
    fs.readSync(fd, want, 0, 100, 1000);
    fs.closeSync(fd);
    assert.deepEqual(got, want);
    const open = await fetch(server.url + url, { headers: { Cookie: bob.cookieHeader(), Range: `bytes=${SIZE - 10}-` } });
    assert.equal(open.status, 206);
    assert.equal((await open.arrayBuffer()).byteLength, 10);
  });

  it('a Range that is not one range of bytes is ignored (the whole file); one past the end is 416', async () => {
    const head = (range) => fetch(server.url + url, { method: 'HEAD', headers: { Cookie: bob.cookieHeader(), Range: range } });
    for (const range of ['items=0-1', 'bytes=0-1,5-6', 'bytes=5-1', 'bytes=abc']) {
      const r = await head(range);
      assert.equal(r.status, 200, range);
      assert.equal(r.headers.get('content-length'), String(SIZE), range);
      assert.equal(r.headers.get('content-range'), null, range);
    }
    const past = await head(`bytes=${SIZE}-`);
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${SIZE}`);
  });

  it('four slow downloads of 300 MB at once do not grow the server by the file size', async () => {
    const baseline = rssMiB(server.proc.pid);
    // Clients that ask for the whole file and then read nothing: whatever the server holds for them stays held.
    const socks = await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: server.port }, () => {
        s.write(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${bob.cookieHeader()}\r\n\r\n`);
        resolve(s);
      });
      s.on('error', reject);
    })));
    let firstBytes = 0;
    socks[0].once('data', (d) => { firstBytes = d.length; socks[0].pause(); });
    for (const s of socks.slice(1)) s.pause();
    await new Promise((r) => setTimeout(r, 1500));
    const during = rssMiB(server.proc.pid);
    for (const s of socks) s.destroy();
    assert.ok(firstBytes > 0, 'the download started');
    assert.ok(during - baseline < 64, `server RSS grew ${(during - baseline).toFixed(1)} MiB (from ${baseline.toFixed(1)})`);
  });

  it('a slow reader keeps its download past the timeout while it reads; one that stops reading is let go', async () => {
    const open = () => new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: server.port }, () => {
        s.write(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${bob.cookieHeader()}\r\n\r\n`);
        resolve(s);
      });
      s.on('error', reject);
    });
    // Reads a little every 0.5 s for 5 s (the server's timeout is 2 s).
    const slow = await open();
    let got = 0;
    let closedAt = null;
    const t0 = Date.now();
    slow.on('data', (d) => { got += d.length; slow.pause(); });
    slow.on('close', () => { closedAt = Date.now() - t0; });
    for (let i = 0; i < 10; i += 1) {
      await new Promise((r) => setTimeout(r, 500));
      slow.resume();
    }
    assert.equal(closedAt, null, `the slow download was cut after ${closedAt} ms with ${got} bytes`);
    assert.ok(got > 0 && got < SIZE);
    slow.destroy();
    // Takes nothing after the first bytes: the server gives up on it after about 2 s.
    const stuck = await open();
    const stuckClosed = new Promise((resolve) => stuck.on('close', () => resolve(Date.now())));
    stuck.once('data', () => stuck.pause());
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, 4500));
    stuck.resume();  // drain what the kernel holds, then the server's end shows
    stuck.on('data', () => {});
    const when = await Promise.race([stuckClosed, new Promise((r) => setTimeout(() => r(null), 20000))]);
    assert.ok(when !== null, 'the server never closed a connection whose client stopped reading');
    assert.ok(when - t1 < 15000);
  });

  it('a whole download has every byte', async () => {
    const r = await fetch(server.url + url, { headers: { Cookie: bob.cookieHeader() } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(SIZE));
    let total = 0;
    let head;
    for await (const chunk of r.body) {
      if (!head) head = Buffer.from(chunk.subarray(0, 44));
      total += chunk.length;
    }
    assert.equal(total, SIZE);
    assert.deepEqual(head, wavHeader(SIZE - 44));
  });
});
