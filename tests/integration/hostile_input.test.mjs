// Requests built to break the server: invalid UTF-8 anywhere, numbers JSON cannot hold, state that must not leak
// from one request to the next on a keep-alive connection. Each gets a clear JSON error and the server lives on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { Client, uniqueName } from '../support/client.mjs';
import { rawExchange, rawRequest } from '../support/raw_http.mjs';
import { startServer } from '../support/server.mjs';

const upgradeHeaders = (extra = {}) => ({
  Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...extra,
});

describe('hostile input', () => {
  let server;
  let a;
  before(async () => {
    server = await startServer();
    a = new Client(server.url);
    await a.register(uniqueName('host'));
  });
  after(async () => { await server.stop(); });

  // The answer is one JSON error whose text is valid UTF-8, and the server still answers afterwards.
  async function refusedAlive(request, status, code) {
    const [res] = await rawExchange(server.port, [request]);
    assert.ok(res, `no answer to ${request.toString('latin1').split('\r\n')[0]}: the server closed the connection\n${server.logs().slice(-2000)}`);
    assert.equal(res.status, status, res.text);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(res.bodyBytes), 'body is valid UTF-8');
    assert.equal(res.body.error.code, code, res.text);
    assert.ok(res.body.error.message.length > 5);
    const alive = await fetch(`${server.url}/api/csrf`);
    assert.equal(alive.status, 200, 'the server still answers');
    return res;
  }

  it('invalid UTF-8 in the path is refused with 400, not a crash', async () => {
    await refusedAlive(rawRequest('GET', '/%ff'), 400, 'invalid_path');
    await refusedAlive(rawRequest('GET', '/%c3'), 400, 'invalid_path');
    await refusedAlive(rawRequest('DELETE', '/api/health/%ff'), 400, 'invalid_path');
    await refusedAlive(rawRequest('GET', '/static/%ff'), 400, 'invalid_path');
    await refusedAlive(rawRequest('GET', '/\xff\xfe'), 400, 'invalid_path');
    await refusedAlive(rawRequest('GET', '/ws/%ff', { headers: upgradeHeaders() }), 400, 'invalid_path');
  });

  it('a NUL or control byte in the path is refused, so /static/x.html%00.js is not served as anything', async () => {
    await refusedAlive(rawRequest('GET', '/static/dashboard/index.html%00.js'), 400, 'invalid_path');
    await refusedAlive(rawRequest('GET', '/api/me%0a'), 400, 'invalid_path');
  });

  it('invalid UTF-8 in bodies and headers is refused with a readable message', async () => {
    const csrf = await a.csrf();
    const headers = { Cookie: a.cookieHeader(), 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' };
    await refusedAlive(rawRequest('POST', '/api/auth/register', { headers, body: '\xe9' }), 400, 'bad_json');
    await refusedAlive(rawRequest('POST', '/api/auth/register', { headers, body: Buffer.from('é') }), 400, 'bad_json');
    await refusedAlive(rawRequest('POST', '/api/auth/register',
      { headers, body: '{"username":"\xff\xfe","password":"correct horse"}' }), 400, 'bad_json');
    const res = await refusedAlive(rawRequest('POST', '/api/stream/start',
      { headers: { ...headers, 'Content-Type': 'text/\xff' }, body: '{}' }), 415, 'unsupported_media_type');
    assert.match(res.body.error.message, /text\/\uFFFD/, 'the refused type is shown with a replacement character');
    await refusedAlive(rawRequest('GET', '/api/stream/status?username=%ff', { headers }), 400, 'invalid_field');
    await refusedAlive(rawRequest('DELETE', '/api/friends/%ff', { headers }), 400, 'invalid_path');
    await refusedAlive(rawRequest('GET', '/ws/presence/?client_id=t1',
      { headers: upgradeHeaders({ Cookie: a.cookieHeader(), Origin: 'http://\xff' }) }), 403, 'forbidden_origin');
  });

  it('a NUL inside a field does not cut the error message short', async () => {
    const res = await a.post('/api/friends/requests', { username: 'ab\u0000cd' });
    assert.equal(res.status, 404, res.text);
    assert.match(res.body.error.message, /ab\\u0000cd|ab\u0000cd/, 'the whole name is in the message');
    assert.match(res.body.error.message, /cd/);
  });

  it('numbers too large for JSON are bad JSON, not a server error', async () => {
    const r1 = await a.request('POST', '/api/stream/start', { raw: '{"client_id":"t","atten_lim_db":1e400}', contentType: 'application/json' });
    assert.equal(r1.status, 400, r1.text);
    assert.equal(r1.body.error.code, 'bad_json');
    const r2 = await a.request('POST', '/api/auth/register', { raw: '{"username":"x1","password":1e400}', contentType: 'application/json' });
    assert.equal(r2.status, 400, r2.text);
    assert.equal(r2.body.error.code, 'bad_json');
    const r3 = await a.request('POST', '/api/stream/stop', { raw: '{"session_id":123456789012345678901234567890}', contentType: 'application/json' });
    assert.equal(r3.status, 400, r3.text);
  });

  it('a 413 on a keep-alive connection carries no cookie set for the request before it', async () => {
    const big = JSON.stringify({ username: 'x'.repeat(70 * 1024) });
    const [first, second] = await rawExchange(server.port, [
      rawRequest('GET', '/api/me'),
      rawRequest('POST', '/api/friends/requests', {
        headers: { Cookie: `fc25_csrf=${'b'.repeat(64)}`, 'X-CSRF-Token': 'b'.repeat(64), 'Content-Type': 'application/json' },
        body: big,
      }),
    ]);
    assert.equal(first.status, 401);
    assert.ok(first.setCookies.some((c) => c.startsWith('fc25_csrf=')), 'the first answer sets a fresh CSRF cookie');
    assert.equal(second.status, 413, second.text);
    assert.equal(second.body.error.code, 'payload_too_large');
    assert.deepEqual(second.setCookies, [], 'the 413 sets no cookie');
  });

  it('WebSocket frames of invalid UTF-8 or JSON are answered or closed, and the server lives', async () => {
    const sock = a.openPresence();
    await sock.ready;
    sock.ws.send(Buffer.from([0xff]), { binary: true });
    const err1 = await sock.next((m) => m.type === 'error');
    assert.match(err1.error.message, /JSON/);
    sock.ws.send(Buffer.from('é'), { binary: false });
    const err2 = await sock.next((m) => m.type === 'error');
    assert.match(err2.error.message, /JSON/);
    sock.ws.send('{"type":"\xff"}');
    const err3 = await sock.next((m) => m.type === 'error');
    assert.ok(err3.error.message.length > 5);
    // A text frame that is not UTF-8 at all breaks the WebSocket protocol: the server closes this socket only.
    const raw = new WebSocket(server.url.replace(/^http/, 'ws') + '/ws/presence/?client_id=t2',
      { headers: { Origin: server.url, Cookie: a.cookieHeader() } });
    await new Promise((resolve, reject) => { raw.on('open', resolve); raw.on('error', reject); });
    const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)));
    raw.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
    const code = await closed;
    assert.ok(code === 1007 || code === 1002 || code === 1006, `closed with ${code}`);
    sock.send({ type: 'ping' });
    await sock.next((m) => m.type === 'pong');
    await sock.close();
    assert.equal((await fetch(`${server.url}/api/csrf`)).status, 200);
  });

  it('a refused socket message is logged with what it was and why; its text cannot forge a line of the log', async () => {
    const sock = a.openPresence();
    await sock.ready;
    sock.send({ type: 'webrtc_offer', session_id: 987654, sdp: 'v=0' });
    const err = await sock.next((m) => m.type === 'error' && m.for === 'webrtc_offer');
    sock.send({ type: 'hello\n2026-01-01T00:00:00.000 info  [http] forged line' });
    await sock.next((m) => m.type === 'error' && m.error.message.includes('forged'));
    await sock.close();
    const lines = server.logs().split('\n');
    const offer = lines.find((l) => l.includes(`presence user=${a.username} `) && l.includes('message "webrtc_offer" refused'));
    assert.ok(offer, `the refused offer is in the log:\n${lines.slice(-20).join('\n')}`);
    assert.ok(offer.includes(`refused: ${err.error.code} `), `with the code the page was given: ${offer}`);
    assert.match(offer, /\binfo\b/);
    const forged = lines.filter((l) => l.includes('forged line'));
    assert.ok(forged.length >= 1, 'the unknown type is logged');
    for (const l of forged) assert.ok(l.includes('refused') && l.includes('\\n'), `quoted, on the refusal's own line: ${l}`);
  });

  // Copying or writing JSON recurses once per level: a value nested 30 000 deep, echoed back, would overflow the
  // thread's stack. Nesting beyond 32 levels is refused when it is read.
  it('JSON nested thousands of levels deep is refused, in a body and on a socket, and the server lives', async () => {
    const deep = (n) => '['.repeat(n) + ']'.repeat(n);
    const r = await a.request('POST', '/api/friends/requests', { raw: `{"username":${deep(30000)}}`, contentType: 'application/json' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.code, 'bad_json');
    assert.match(r.body.error.message, /nested deeper than 32/);
    const sock = a.openPresence();
    await sock.ready;
    for (const frame of [`{"type":${deep(30000)}}`, `{"type":"listen_offer","session_id":${deep(30000)}}`,
      `{"type":"ping","t":${deep(30000)}}`]) {
      sock.ws.send(frame);
      const e = await sock.next((m) => m.type === 'error', 5000);
      assert.equal(e.error.code, 'bad_message', JSON.stringify(e));
      assert.match(e.error.message, /nested deeper than 32/);
    }
    // Nesting a page might really use is fine.
    sock.send(`{"type":"ping","t":${deep(20)}}`);
    assert.equal((await sock.next((m) => m.type === 'pong')).t.length, 1);
    await sock.close();
    assert.equal((await fetch(`${server.url}/api/csrf`)).status, 200);
  });

  // An answer to HEAD is a header, whatever the status: bytes of an error's body after it would be read as the
  // start of the next answer on a kept-alive connection.
  it('HEAD answers carry no body, errors included, so the next answer on the connection is read right', async () => {
    const res = await rawExchange(server.port, [
      rawRequest('HEAD', '/api/me'), rawRequest('HEAD', '/no/such/page'), rawRequest('HEAD', '/media/recordings/999999.wav'),
      rawRequest('GET', '/api/csrf'),
    ]);
    assert.deepEqual(res.map((r) => r.status), [405, 404, 401, 200], res.map((r) => r.text).join(' | '));
    for (const r of res.slice(0, 3)) assert.ok(Number(r.headers['content-length']) > 0, 'the length a GET would have');
    assert.match(res[3].headers['content-type'], /json/);
    assert.equal(typeof res[3].body.csrf_token, 'string', res[3].text);
  });

  it('the server is still the same process after all of it', async () => {
    assert.equal(server.proc.exitCode, null, server.logs().slice(-3000));
    assert.doesNotMatch(server.logs(), /terminate called|Aborted|AddressSanitizer|runtime error:/);
  });
});
