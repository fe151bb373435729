// HTTPS served by fc25 itself (--tls-cert/--tls-key): the certificate it was given, the API and the Secure cookies
// over TLS, the presence socket over wss, plain HTTP on that port refused, and strangers' junk, half handshakes and
// silence neither stopping the server nor holding connections open past the request timeout. Also the start-up
// errors for certificate files that cannot serve.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { rawExchange } from '../support/raw_http.mjs';
import { fc25Bin, startServer, tempDir } from '../support/server.mjs';
import { makeCertificate } from '../support/tls.mjs';

// fetch and ws check certificates against the system's authorities, where a test's own is not: each connection's
// certificate is checked below against the one the test made (tls.connect with it as the only authority).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const serve = (args, env = {}) => spawnSync(fc25Bin, ['serve', '--port', '0', '--data-dir', tempDir(), ...args],
  { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 15000 });

// One TLS connection trusting only `ca`: resolves with the peer certificate, or rejects with the handshake's error.
function handshake(port, { ca, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca ? fs.readFileSync(ca) : undefined, rejectUnauthorized: true,
      ...opts }, () => {
      const peer = s.getPeerCertificate();
      const authorized = s.authorized;
      const protocol = s.getProtocol();
      s.end();
      resolve({ peer, authorized, protocol });
    });
    s.on('error', reject);
  });
}

// A raw TCP connection that sends `bytes` (or nothing) and reports how it ended: 'closed' when the server closed
// it within `waitMs`, 'open' otherwise (then it is destroyed).
function rawConnection(port, bytes, { waitMs = 6000, abortAfterMs } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let settled = false;
    const done = (how) => { if (!settled) { settled = true; clearTimeout(t); s.destroy(); resolve(how); } };
    const t = setTimeout(() => done('open'), waitMs);
    s.on('connect', () => {
      if (bytes) s.write(bytes);
      if (abortAfterMs !== undefined) setTimeout(() => { s.resetAndDestroy(); done('aborted'); }, abortAfterMs);
    });
    s.on('data', () => {});
    s.on('close', () => done('closed'));
    s.on('error', () => done('closed'));
  });
}

describe('HTTPS in the server', () => {
  let cert, server;
  before(async () => {
    cert = makeCertificate({ names: ['127.0.0.1', 'localhost'] });
    // A short request timeout, so that the test sees a silent connection closed by it.
    server = await startServer({ tls: cert, args: ['--http-timeout-s', '2'], env: { FC25_LOG_LEVEL: 'debug' } });
  });
  after(async () => { await server?.stop(); });

  it('presents the certificate it was given, over TLS 1.2 or newer, and says it listens on https', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const { peer, authorized, protocol } = await handshake(server.port, { ca: cert.cert });
    assert.equal(authorized, true, 'the certificate verifies against the one the test made, for 127.0.0.1');
    assert.equal(peer.fingerprint256, cert.fingerprint256);
    assert.match(protocol, /^TLSv1\.[23]$/);
    await assert.rejects(handshake(server.port, { ca: cert.cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0' }), 'TLS 1.1 is refused');
    await server.waitForLog(/TLS handshake with 127\.0\.0\.1 failed: unsupported protocol/, 3000);   // by the server
    assert.match(server.logs(), new RegExp(`listening on https://127\\.0\\.0\\.1:${server.port}`));
    const other = makeCertificate({ names: ['127.0.0.1'], prefix: 'other' });
    await assert.rejects(handshake(server.port, { ca: other.cert }), /self[- ]signed|unable to verify|certificate/i,
      'a client trusting another certificate does not accept this server');
  });

  it('answers the API over HTTPS, and register and login set Secure cookies', async () => {
    const health = await fetch(`${server.url}/api/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, 'ok');
    const alice = new Client(server.url);
    const name = uniqueName('alice');
    const reg = await alice.register(name);
    const regCookies = reg.headers.getSetCookie();
    const session = regCookies.find((c) => c.startsWith('fc25_session='));
    assert.ok(session, `a session cookie is set: ${regCookies}`);
    assert.match(session, /;\s*Secure\b/i);
    assert.match(session, /HttpOnly/i);
    for (const c of regCookies) assert.match(c, /;\s*Secure\b/i, `every cookie is Secure: ${c}`);
    const bob = new Client(server.url);
    const login = await bob.login(name);
    assert.equal(login.status, 200);
    const loginSession = login.headers.getSetCookie().find((c) => c.startsWith('fc25_session='));
    assert.match(loginSession, /;\s*Secure\b/i);
    assert.equal((await bob.get('/api/me')).body.username, name);
    const page = await bob.get('/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<html/i, 'pages are served over HTTPS too');
  });

  it('opens the presence socket over wss and sends its snapshot', async () => {
    const carol = new Client(server.url);
    await carol.register(uniqueName('carol'));
    const sock = carol.openPresence();
    assert.match(sock.ws.url, /^wss:\/\//);
    const snap = await sock.ready;
    assert.equal(snap.type, 'snapshot');
    assert.equal(snap.self.username, carol.username);
    sock.send({ type: 'ping', t: 7 });
    assert.equal((await sock.next((m) => m.type === 'pong')).t, 7);
    await sock.close();
  });

  it('does not serve plain HTTP on the HTTPS port: a 400 https_required and the connection closed', async () => {
    const [res] = await rawExchange(server.port, ['GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'https_required');
    assert.match(res.body.error.message, /HTTPS only/);
    assert.doesNotMatch(res.text, /node_id|live_streams/, 'nothing of the API answer');
    const plain = await fetch(`http://127.0.0.1:${server.port}/api/me`);
    assert.equal(plain.status, 400);
    assert.equal(plain.headers.get('set-cookie'), null, 'no cookie over plain HTTP');
  });

  it('survives 50 connections of junk, half handshakes and silence, closing each within the timeout', async () => {
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);  // a ClientHello's start
    const kinds = [
      () => rawConnection(server.port, crypto.randomBytes(300)),                       // junk
      () => rawConnection(server.port, Buffer.concat([Buffer.from([0x16, 0x03, 0x03]), crypto.randomBytes(200)])),  // a TLS record of junk
      () => rawConnection(server.port, hello),                                          // a handshake that stops
      () => rawConnection(server.port, hello, { abortAfterMs: 50 }),                    // a handshake reset
      () => rawConnection(server.port, null),                                           // silence
    ];
    const started = performance.now();
    const ends = await Promise.all(Array.from({ length: 50 }, (_, i) => kinds[i % kinds.length]()));
    const took = performance.now() - started;
    assert.equal(ends.filter((e) => e === 'open').length, 0, `every connection closed by the server: ${ends}`);
    assert.ok(took < 6000, `closed within the 2 s timeout and a margin (${took.toFixed(0)} ms)`);
    const health = await fetch(`${server.url}/api/health`);
    assert.equal(health.status, 200);
    const body = await health.json();
    assert.deepEqual(body.failures, {}, 'no exception anywhere');
    assert.equal(server.proc.exitCode, null, 'still running');
    assert.match(server.logs(), /debug \[http\] TLS handshake with 127\.0\.0\.1 failed/);
    assert.doesNotMatch(server.logs(), /\b(error|critical)\s+\[/, 'nothing logged as an error');
  });
});

describe('fc25 serve refuses certificate files that cannot serve, naming the option and the file', () => {
  let cert, other;
  before(() => {
    cert = makeCertificate();
    other = makeCertificate({ dir: cert.dir, prefix: 'other' });
  });

  it('a missing certificate file', () => {
    const missing = path.join(cert.dir, 'nope.crt');
    const r = serve(['--tls-cert', missing, '--tls-key', cert.key]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TLS_CERT \(--tls-cert\): cannot read '.*nope\.crt': No such file or directory/);
  });

  it('a key that is not the certificate\'s (from the environment)', () => {
    const r = serve([], { FC25_TLS_CERT: cert.cert, FC25_TLS_KEY: other.key });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TLS_KEY \(--tls-key\): the key in '.*other\.key' does not match the certificate in '.*server\.crt'/);
  });

  it('files of the wrong kind, an unreadable key, and a certificate without its key', () => {
    let r = serve(['--tls-cert', cert.key, '--tls-key', cert.key]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TLS_CERT \(--tls-cert\): '.*server\.key' is not a PEM certificate/);
    r = serve(['--tls-cert', cert.cert, '--tls-key', cert.cert]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TLS_KEY \(--tls-key\): '.*server\.crt' is not a PEM private key/);
    const locked = path.join(cert.dir, 'locked.key');
    fs.copyFileSync(cert.key, locked);
    fs.chmodSync(locked, 0o000);
    if (process.getuid() === 0) {
      // root reads any file: an empty one stands for an unreadable key.
      fs.writeFileSync(locked, '');
    }
    r = serve(['--tls-cert', cert.cert, '--tls-key', locked]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TLS_KEY \(--tls-key\): (cannot read '.*locked\.key': Permission denied|'.*locked\.key' is not a PEM private key)/);
    r = serve(['--tls-cert', cert.cert]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FC25_TLS_KEY \(--tls-key\) is missing/);
  });
});
