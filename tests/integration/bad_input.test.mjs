// Every refusal is the documented status with a JSON {error: {code, message}}, and changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('bad input', () => {
  let server;
  let a;
  const snapshot = () => JSON.stringify(['users', 'sessions', 'friend_requests', 'friendships', 'stream_sessions',
    'active_streams'].map((t) => query(server.dbPath, `SELECT * FROM ${t} ORDER BY 1`)));
  const refused = (r, status, code) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.body.error.code, code);
    assert.equal(typeof r.body.error.message, 'string');
    assert.ok(r.body.error.message.length > 5);
  };
  before(async () => {
    server = await startServer();
    a = new Client(server.url);
    await a.register(uniqueName('bad'));
  });
  after(async () => { await server.stop(); });

  it('refuses each bad request and leaves the database as it was', async () => {
    const before = snapshot();
    refused(await a.request('POST', '/api/stream/start', { raw: '{"client_id": ', contentType: 'application/json' }), 400, 'bad_json');
    refused(await a.request('POST', '/api/stream/start', { raw: '[1,2]', contentType: 'application/json' }), 400, 'bad_json');
    refused(await a.request('POST', '/api/stream/start', { raw: 'client_id=x', contentType: 'text/plain' }), 415, 'unsupported_media_type');
    refused(await a.request('POST', '/api/stream/start', { json: { client_id: 'x'.repeat(70 * 1024) } }), 413, 'payload_too_large');
    refused(await a.request('POST', '/api/stream/start', { json: { client_id: 7 } }), 400, 'invalid_field');
    refused(await a.request('POST', '/api/stream/start', { json: { client_id: 'bad id!' } }), 400, 'invalid_field');
    refused(await a.get('/api/no/such/route'), 404, 'not_found');
    const wrongMethod = await a.request('PUT', '/api/me', { json: {} });
    refused(wrongMethod, 405, 'method_not_allowed');
    assert.equal(wrongMethod.headers.get('allow'), 'GET');
    refused(await a.post('/api/stream/start', { client_id: 'tab' }, { csrf: false }), 403, 'csrf_failed');
    refused(await a.post('/api/stream/start', { client_id: 'tab' }, { csrf: 'wrong' }), 403, 'csrf_failed');
    const anon = new Client(server.url);
    refused(await anon.post('/api/stream/start', { client_id: 'tab' }), 401, 'not_authenticated');
    refused(await anon.get('/api/friends'), 401, 'not_authenticated');
    refused(await a.post('/api/friends/requests', { username: a.username }), 400, 'self_request');
    refused(await a.post('/api/friends/requests', { username: 'ghost_user' }), 404, 'unknown_user');
    refused(await a.post('/api/friends/requests', {}), 400, 'invalid_field');
    refused(await a.post('/api/friends/requests/99999/accept'), 404, 'not_found');
    refused(await a.post('/api/friends/requests/abc/accept'), 404, 'not_found');
    refused(await a.post('/api/stream/stop', { reason: 'because' }), 400, 'invalid_field');
    refused(await a.post('/api/auth/register', { username: a.username, password: 'whatever1' }), 409, 'username_taken');
    refused(await a.post('/api/auth/register', { username: 'y'.repeat(40), password: 'whatever1' }), 400, 'invalid_username');
    refused(await a.post('/api/auth/register', { username: 'Bad Name', password: 'whatever1' }), 400, 'invalid_username');
    refused(await a.post('/api/auth/register', { username: uniqueName('np') }), 400, 'invalid_field');
    refused(await a.get('/static/../../etc/passwd'), 404, 'not_found');
    assert.equal(snapshot(), before);
  });

  it('an address with no page: a page for a browser, the JSON error for everything else', async () => {
    const browserAsks = { headers: { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } };
    const page = await a.get('/no-such-page', browserAsks);
    assert.equal(page.status, 404);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.match(page.text, /<h2>No such page<\/h2>/);
    assert.match(page.text, /<a href="\/">Go to your dashboard<\/a>/);
    assert.match(page.headers.get('content-security-policy'), /default-src 'self'/, 'as strict as every page');
    refused(await a.get('/no-such-page'), 404, 'not_found');
    // The API's addresses answer in JSON whatever the browser asks for.
    refused(await a.get('/api/no/such/route', browserAsks), 404, 'not_found');
    refused(await a.get('/static/no-such-file.js', browserAsks), 404, 'not_found');
  });

  it('reads paths, ids and ?username= the same way in every route', async () => {
    // '+' in a path is itself (only a query or a form takes it for a space).
    const plus = await a.get('/api/no+such/route');
    refused(plus, 404, 'not_found');
    assert.match(plus.body.error.message, /\/api\/no\+such\/route/);
    // An id is ASCII digits: no other script's digits (U+0663, U+00B2), nothing over what an id can be.
    for (const path of ['/api/recordings/%D9%A3', '/api/recordings/%C2%B2', '/api/recordings/99999999999999999999',
      '/api/recordings/-1', '/media/recordings/%D9%A3.wav', '/media/recordings/99999999999999999999.wav']) {
      refused(await a.get(path), 404, 'not_found');
    }
    refused(await a.post('/api/friends/requests/%D9%A3/accept'), 404, 'not_found');
    for (const id of ['\u0663', '99999999999999999999', '-1', '1e3']) {
      refused(await a.post('/api/stream/stop', { session_id: id }), 400, 'invalid_field');
    }
    // ?username= names the requester, a friend (403 for anyone else, 404 for no one); empty or absent, the requester.
    const b = new Client(server.url);
    await b.register(uniqueName('nf'));
    for (const route of ['/api/recordings', '/api/stream/status']) {
      for (const q of ['', '?username=', `?username=${a.username}`]) {
        const r = await a.get(route + q);
        assert.equal(r.status, 200, `${route}${q}: ${r.text}`);
        assert.equal(r.body.username, a.username);
      }
      refused(await a.get(`${route}?username=${b.username}`), 403, 'not_friends');
      refused(await a.get(`${route}?username=ghost_user`), 404, 'unknown_user');
    }
  });

  it('refuses the status of a non-friend', async () => {
    const b = new Client(server.url);
    await b.register(uniqueName('nf'));
    refused(await a.get(`/api/stream/status?username=${b.username}`), 403, 'not_friends');
  });
});
