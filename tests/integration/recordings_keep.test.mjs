// Recordings people can keep: titles the owner gives them, downloads that save under a telling name, the raw twin
// where one was kept, lists past 100, a per-user quota and a retention period.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { addRecordings } from '../support/recordings.mjs';
import { startServer, tempDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

describe('recordings people can keep', () => {
  let server, alice, bob, eve;
  before(async () => {
    server = await startServer();
    alice = new Client(server.url);
    await alice.register(uniqueName('alice'));
    bob = new Client(server.url);
    await bob.register(uniqueName('bob'));
    eve = new Client(server.url);
    await eve.register(uniqueName('eve'));
    await makeFriends(alice, bob);
  });
  after(async () => { await server?.stop(); });

  it('the owner titles a recording; friends see the title; no one else may change it', async () => {
    const [id] = addRecordings(server, alice.username);
    let r = await alice.request('PATCH', `/api/recordings/${id}`, { json: { title: '  Sunday jam, take 2 ✓ ' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.title, 'Sunday jam, take 2 ✓', 'kept trimmed');
    assert.equal(query(server.dbPath, `SELECT title FROM stream_recordings WHERE id = ${id}`)[0].title, 'Sunday jam, take 2 ✓');
    const seen = await bob.get(`/api/recordings/${id}`);
    assert.equal(seen.body.title, 'Sunday jam, take 2 ✓');
    assert.equal(seen.body.can_edit, false);
    r = await bob.request('PATCH', `/api/recordings/${id}`, { json: { title: 'mine now' } });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'not_owner');
    r = await eve.request('PATCH', `/api/recordings/${id}`, { json: { title: 'x' } });
    assert.equal(r.status, 404, 'a stranger is told nothing exists');
    r = await alice.request('PATCH', `/api/recordings/${id}`, { json: { title: 'é'.repeat(101) } });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /at most 100 characters \(this one has 101\)/);
    r = await alice.request('PATCH', `/api/recordings/${id}`, { json: { title: 'a\u0007b' } });
    assert.match(r.body.error.message, /control characters/);
    r = await alice.request('PATCH', `/api/recordings/${id}`, { json: { title: 42 } });
    assert.match(r.body.error.message, /'title' must be a string/);
    assert.equal((await bob.get(`/api/recordings/${id}`)).body.title, 'Sunday jam, take 2 ✓', 'refusals changed nothing');
    r = await alice.request('PATCH', `/api/recordings/${id}`, { json: { title: '' } });
    assert.equal(r.body.title, '', 'an empty title clears it');
  });

  it('Download saves under the user, the time and the title; the raw twin when it was kept', async () => {
    const [id] = addRecordings(server, alice.username, { raw: true });
    const [plain] = addRecordings(server, alice.username);
    await alice.request('PATCH', `/api/recordings/${id}`, { json: { title: 'Café set' } });
    const rec = (await bob.get(`/api/recordings/${id}`)).body;
    assert.equal(rec.download_url, `/media/recordings/${id}.wav?download=1`);
    assert.equal(rec.raw_url, `/media/recordings/${id}_raw.wav`);
    assert.equal((await bob.get(`/api/recordings/${plain}`)).body.raw_url, null, 'no twin, no raw_url');
    const when = rec.started_at.slice(0, 16).replace('T', '-').replace(':', '');
    let r = await fetch(server.url + rec.download_url, { headers: { Cookie: bob.cookieHeader() } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-disposition'),
      `attachment; filename="fc25-${alice.username}-${when}-Caf-set.wav"; filename*=UTF-8''fc25-${alice.username}-${when}-Caf%C3%A9-set.wav`);
    const file = fs.readFileSync(path.join(server.dataDir, `streamed_audios/${alice.username}_${rec.session_id}.wav`));
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), file);
    r = await fetch(server.url + rec.url, { headers: { Cookie: bob.cookieHeader() } });
    assert.equal(r.headers.get('content-disposition'), null, 'playing is not downloading');
    r = await fetch(`${server.url}${rec.raw_url}?download=1`, { headers: { Cookie: bob.cookieHeader() } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-disposition'), /-Caf-set-original\.wav"/);
    const raw = fs.readFileSync(path.join(server.dataDir, `streamed_audios/${alice.username}_${rec.session_id}_raw.wav`));
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), raw);
    r = await fetch(`${server.url}/media/recordings/${plain}_raw.wav`, { headers: { Cookie: bob.cookieHeader() } });
    assert.equal(r.status, 404);
    r = await fetch(`${server.url}${rec.raw_url}`, { headers: { Cookie: eve.cookieHeader() } });
    assert.equal(r.status, 404, 'the raw twin is as private as the recording');
  });

  it('lists past 100 page by next_before, newest first, each recording once', async () => {
    const carol = new Client(server.url);
    await carol.register(uniqueName('carol'));
    const ids = addRecordings(server, carol.username, { count: 130, files: false });
    let page = await carol.get('/api/recordings');
    assert.equal(page.body.recordings.length, 100);
    assert.equal(page.body.next_before, page.body.recordings[99].id);
    const seen = page.body.recordings.map((r) => r.id);
    page = await carol.get(`/api/recordings?before=${page.body.next_before}`);
    assert.equal(page.body.recordings.length, 30);
    assert.equal(page.body.next_before, null, 'the last page says so');
    seen.push(...page.body.recordings.map((r) => r.id));
    assert.deepEqual(seen, [...ids].reverse());
    page = await carol.get('/api/recordings?limit=7');
    assert.equal(page.body.recordings.length, 7);
    for (const bad of ['limit=0', 'limit=101', 'limit=x', 'before=-1']) {
      const r = await carol.get(`/api/recordings?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.body.error.message, /limit must be a whole number from 1 to 100|before must be a recording id/);
    }
  });
});

describe('quota and retention', () => {
  it('a full quota refuses going live, saying how full; the list shows the use', async () => {
    const server = await startServer({ env: { FC25_QUOTA_MB: '2' } });
    try {
      const dana = new Client(server.url);
      await dana.register(uniqueName('dana'));
      addRecordings(server, dana.username, { bytes: 1.5 * 1024 * 1024 });
      let list = await dana.get('/api/recordings');
      assert.deepEqual(list.body.usage, { bytes: 1.5 * 1024 * 1024, quota_bytes: 2 * 1024 * 1024 });
      let r = await dana.post('/api/stream/start', { client_id: 'tab' });
      assert.equal(r.status, 201, 'under the quota: live');
      await dana.post('/api/stream/stop', {});
      const [id] = addRecordings(server, dana.username, { bytes: 1024 * 1024 });
      r = await dana.post('/api/stream/start', { client_id: 'tab' });
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'quota_exceeded');
      assert.match(r.body.error.message, /your recordings use 2\.\d MB of your 2 MB: delete some/);
      assert.equal(query(server.dbPath, 'SELECT count(*) AS n FROM active_streams')[0].n, 0, 'nothing was started');
      assert.equal((await dana.request('DELETE', `/api/recordings/${id}`)).status, 200);
      r = await dana.post('/api/stream/start', { client_id: 'tab' });
      assert.equal(r.status, 201, 'room again after a delete');
      await dana.post('/api/stream/stop', {});
      list = await dana.get('/api/recordings');
      const friend = new Client(server.url);
      await friend.register(uniqueName('fred'));
      await makeFriends(dana, friend);
      assert.equal((await friend.get(`/api/recordings?username=${dana.username}`)).body.usage, undefined,
        "a friend does not see someone's usage");
    } finally {
      await server.stop();
    }
  });

  it('recordings older than FC25_RETENTION_DAYS go at start-up, file, twin and row; newer ones stay', async () => {
    const dataDir = tempDir();
    let server = await startServer({ dataDir });
    const erin = new Client(server.url);
    await erin.register(uniqueName('erin'));
    const day = 86400000;
    const [old] = addRecordings(server, erin.username, { createdAt: Date.now() - 8 * day, raw: true });
    const [recent] = addRecordings(server, erin.username, { createdAt: Date.now() - 6 * day });
    const oldPath = query(server.dbPath, `SELECT path FROM stream_recordings WHERE id = ${old}`)[0].path;
    await server.stop();
    server = await startServer({ dataDir, env: { FC25_RETENTION_DAYS: '7' } });
    try {
      await server.waitForLog(/retention: 1 recordings older than 7 days deleted/, 5000);
      assert.match(server.logs(), new RegExp(`retention: deleted recording ${old} of ${erin.username}`));
      assert.deepEqual(query(server.dbPath, `SELECT id FROM stream_recordings WHERE user_id =
        (SELECT id FROM users WHERE username = '${erin.username}')`).map((r) => r.id), [recent]);
      assert.equal(fs.existsSync(path.join(dataDir, oldPath)), false);
      assert.equal(fs.existsSync(path.join(dataDir, oldPath.replace(/\.wav$/, '_raw.wav'))), false);
      const again = new Client(server.url);  // the server listens on a new port
      assert.equal((await again.login(erin.username)).status, 200);
      assert.equal((await again.get(`/api/recordings/${recent}`)).status, 200);
      assert.equal((await again.get(`/api/recordings/${old}`)).status, 404);
    } finally {
      await server.stop();
    }
  });
});
