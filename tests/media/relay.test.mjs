// Listening across nodes: two fc25 serve nodes on one real PostgreSQL and one real Redis, with a cluster secret.
// Alice's pages are served by node A, bob's by node B. Bob hears her through B (B relays her stream from A once,
// whatever the number of listeners there); A's and B's listeners at once get every packet; the owner's node
// refuses a relay without the secret; a relay's listeners hear why the stream ended.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { psql, startPostgres } from '../support/postgres.mjs';
import { startRedis } from '../support/redis.mjs';
import { runSend, sendBin } from '../support/send.mjs';
import { sharedDir, startServer, tempDir, until } from '../support/server.mjs';

const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const secret = 'relay-test-cluster-secret';
const password = 'relay password';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const health = async (s) => (await (await fetch(`${s.url}/api/health`)).json());
const perS = 100;  // packets a second a listener is sent: the servers' default packets are 10 ms (FC25_PACKET_MS)
let psqlRows;

const send = (server, args) => runSend(server, password, args, 120000);

describe('listening across nodes (relay)', () => {
  let pg, redis, A, B, browser, env;
  before(async () => {
    requireTestNetwork();
    assert.ok(fs.existsSync(sendBin), `fc25-send not built at ${sendBin}`);
    pg = startPostgres();
    psqlRows = (sql) => psql(pg.url, sql);
    redis = await startRedis();
    env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
      FC25_CLUSTER_SECRET: secret, FC25_DENOISER: 'passthrough' };
    A = await startServer({ env, dataDir: tempDir(), args: ['--database-url', pg.url] });
    B = await startServer({ env, dataDir: tempDir(), args: ['--database-url', pg.url] });
    // Each sees the other's lease (and so its URL) before anyone listens.
    await until(async () => (await health(A)).cluster_nodes === 2 && (await health(B)).cluster_nodes === 2, 5000,
      'both nodes in the cluster');
    browser = await launchBrowser({ audioFile: speech });
  });
  after(async () => {
    await browser?.close();
    await A?.stop();
    await B?.stop();
    await redis?.stop();
    pg?.down();
  });

  async function pageOn(server, client) {
    const ctx = await browser.newContext();
    await ctx.addCookies([...client.cookies].map(([n, value]) => ({ name: n, value, domain: '127.0.0.1', path: '/' })));
    return ctx.newPage();
  }

  it('bob, served by B, sees alice live on A at once and hears her through B; the end reaches him', async (t) => {
    const alice = new Client(A.url);
    await alice.register(uniqueName('alice'));
    const bob = new Client(B.url);
    await bob.register(uniqueName('bob'));
    await makeFriends(alice, bob);
    const alicePage = await pageOn(A, alice);
    const bobPage = await pageOn(B, bob);
    await alicePage.goto(`${A.url}/`);
    await alicePage.waitForSelector('[data-testid=go-live]:not([hidden])');
    await bobPage.goto(`${B.url}/u/${alice.username}`);
    await bobPage.waitForSelector('[data-testid=friend-state]:has-text("Offline")');

    // From the moment alice's page on A shows her live (the server took her start) to bob's page on B showing it.
    await alicePage.click('[data-testid=go-live]');
    const [aliceLive, bobSaw] = await Promise.all([
      alicePage.waitForSelector('[data-testid=stop]:not([hidden])', { timeout: 5000 }).then(() => Date.now()),
      bobPage.waitForSelector('[data-testid=friend-timer]:not([hidden])', { timeout: 6000 }).then(() => Date.now()),
    ]);
    const seenAfter = bobSaw - aliceLive;
    assert.ok(seenAfter <= 1000, `bob's page on B showed alice live ${seenAfter} ms after her page on A did`);
    await alicePage.waitForFunction(() => document.body.dataset.mediaState === 'connected', null, { timeout: 10000 });

    const listenAt = Date.now();
    await bobPage.click('[data-testid=listen]');
    await bobPage.waitForFunction(() => Number(document.querySelector('[data-testid=listen-level]').dataset.maxDb) > -50,
      null, { timeout: 5000 });
    const heardAfter = Date.now() - listenAt;
    const s1 = await bobPage.evaluate(() => window.fc25ReceiveStats());
    await sleep(2000);
    const s2 = await bobPage.evaluate(() => window.fc25ReceiveStats());
    t.diagnostic(`seen live after ${seenAfter} ms; heard after ${heardAfter} ms; ${s2.packetsReceived - s1.packetsReceived} packets in 2 s`);
    assert.ok(s2.packetsReceived - s1.packetsReceived >= 1.8 * perS, `packets keep arriving (${s1.packetsReceived} -> ${s2.packetsReceived})`);

    // The audio bob hears leaves from B: B holds his connection and one relay from A; A has no listener of its own.
    const [hA, hB] = [await health(A), await health(B)];
    assert.equal(hB.listeners, 1, 'B serves bob');
    assert.equal(hB.relays.in.relays, 1, 'B receives the stream over one relay');
    assert.ok(hB.relays.in.packets > 100, `B received ${hB.relays.in.packets} packets over the relay`);
    assert.equal(hA.listeners, 0, 'A sends bob nothing directly');
    assert.equal(hA.relays.out.relays, 1, 'A relays her stream once');
    assert.match(B.logs(), /listener joined user=\S+ stream=\S+ session=\d+ listener=\w+ relayed from http:\/\/127\.0\.0\.1:\d+/);
    // Alice's page counts him: her node counts the listeners its relays serve.
    await alicePage.waitForSelector('[data-testid=listener-count][data-count="1"]', { timeout: 3000 });

    // Alice stops on A: bob's page on B says the stream ended, his connection closes, and so does the relay.
    await alicePage.click('[data-testid=stop]');
    await bobPage.waitForSelector('[data-testid=friend-state]:has-text("Offline")', { timeout: 2000 });
    await bobPage.waitForSelector('[data-testid=listen-note]:has-text("ended")', { timeout: 2000 });
    assert.equal(await bobPage.evaluate(() => window.fc25ReceiveStats()), null, 'no connection left');
    await until(async () => (await health(B)).relays.in.relays === 0 && (await health(A)).relays.out.relays === 0, 3000,
      'the relay closed on both nodes');
    assert.equal((await health(B)).media_pipelines, 0, 'B keeps no pipeline');

    // Her recording, on A's disk, plays on bob's page on B: B asks A for the bytes as the player wants them.
    await bobPage.goto(`${B.url}/u/${alice.username}`);
    const item = bobPage.locator('[data-testid=recordings] [data-testid^=recording-]').first();
    await item.waitFor({ timeout: 5000 });
    const audio = item.locator('audio');
    const played = await audio.evaluate((a) => new Promise((resolve, reject) => {
      a.muted = true;
      a.addEventListener('timeupdate', function once() {
        if (a.currentTime > 0.5) { a.removeEventListener('timeupdate', once); a.pause(); resolve(a.duration); }
      });
      a.addEventListener('error', () => reject(new Error(`audio error ${a.error && a.error.code}`)));
      a.play().catch(reject);
    }));
    t.diagnostic(`her recording (${played.toFixed(2)} s) played on B`);
    assert.ok(played > 1, `it plays, ${played} s long`);
    assert.match(B.logs(), /GET \/media\/recordings\/\d+\.wav 20[06] /, 'served to bob by B');
    await alicePage.context().close();
    await bobPage.context().close();
  });

  it('a relay without the cluster secret is refused, and one for no session is not found', async () => {
    for (const [auth, path, want, code] of [[null, '1', 401, 'cluster_secret_required'],
      ['Bearer not-the-secret-at-all', '1', 401, 'cluster_secret_required'],
      [`Bearer ${secret}`, '12x', 404, 'not_found'], [`Bearer ${secret}`, '-3', 404, 'not_found']]) {
      const { status, body } = await new Promise((resolve, reject) => {
        const req = http.get(`${A.url}/internal/relay/${path}`, {
          headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
            'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...(auth ? { Authorization: auth } : {}) },
        }, (res) => {
          let text = '';
          res.on('data', (d) => { text += d; });
          res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
        });
        req.on('upgrade', () => reject(new Error('upgraded without the secret')));
        req.on('error', reject);
      });
      assert.equal(status, want, `${auth} ${path}`);
      assert.equal(body.error.code, code);
    }
    assert.match(A.logs(), /GET \/internal\/relay\/1 401 relay refused/);
  });

  it('20 listeners on B and 20 on A at once: one relay, and every packet A relays reaches B', async (t) => {
    const caster = new Client(A.url);
    const name = uniqueName('caster');
    await caster.register(name, password);
    const prefixA = uniqueName('la');
    const prefixB = uniqueName('lb');
    for (const [prefix, server] of [[prefixA, A], [prefixB, B]]) {
      for (let i = 0; i < 20; i++) {
        const l = new Client(server.url);
        await l.register(`${prefix}${i}`, password);
        await makeFriends(caster, l);
      }
    }
    const broadcast = spawn(sendBin, ['--port', String(A.port), '--password', password, '--user', name,
      '--wav', speech, '--seconds', '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await A.waitForLog(/media connected/, 15000);
      const before = await health(A);
      const [onA, onB] = await Promise.all([
        send(A, ['--listen', name, '--user', prefixA, '--streams', '20', '--seconds', '6', '--count-at-transport']),
        send(B, ['--listen', name, '--user', prefixB, '--streams', '20', '--seconds', '6', '--count-at-transport']),
      ]);
      for (const lines of [onA, onB]) {
        const results = lines.filter((l) => !l.summary);
        assert.equal(results.length, 20);
        const errors = results.filter((l) => l.error);
        assert.equal(errors.length, 0, JSON.stringify(errors.slice(0, 3)));
        for (const l of results) assert.ok(l.packets_received >= 4 * perS, `${l.user} received ${l.packets_received} packets`);
      }
      const hA = await health(A);
      const hB = await health(B);
      t.diagnostic(`relay: ${hA.relays.out.packets - before.relays.out.packets} packets sent by A, ` +
        `${hB.relays.in.packets} received by B in all, transit p50 ${hB.relays.in.transit_ms.p50} ms p99 ${hB.relays.in.transit_ms.p99} ms`);
      // Only one relay was ever opened for the 20 listeners on B.
      const session = new RegExp(`listener joined user=\\S+ stream=${name} session=(\\d+)`).exec(B.logs())[1];
      const opened = (B.logs().match(new RegExp(`relay of session=${session} from \\S+ opened`, 'g')) || []).length;
      assert.equal(opened, 1, 'one relay for these 20 listeners:\n' +
        B.logs().split('\n').filter((x) => /\[relay\]/.test(x)).join('\n'));
      assert.equal(hA.relays.out.dropped, 0, 'A dropped no packet for a slow relay');
      // What A wrote to its relays reached B (both counters run since start, over both relays): all but the few
      // packets on the way when B closed a relay after its last listener left (B reads nothing after its close).
      await until(async () => (await health(B)).relays.in.relays === 0, 3000, 'the relay closed after the listeners left');
      const sentA = (await health(A)).relays.out.packets;
      const gotB = (await health(B)).relays.in.packets;
      t.diagnostic(`A wrote ${sentA} packets to relays, B received ${gotB}`);
      assert.ok(gotB <= sentA && sentA - gotB <= 10, `B received ${gotB} of the ${sentA} packets A wrote`);
      // B's listeners got what B's fan-out sent them, as A's got A's.
      for (const [server, lines] of [[A, onA], [B, onB]]) {
        const sentBy = new Map([...server.logs().matchAll(/listener left session=\d+ listener=(\w+) \(left; (\d+) packets sent/g)]
          .map((m) => [m[1], Number(m[2])]));
        for (const l of lines.filter((x) => !x.summary)) {
          const sent = sentBy.get(l.listen_id);
          assert.ok(sent > 4 * perS, `${l.user} was sent ${sent}`);
          assert.ok(l.packets_received >= 0.95 * sent, `${l.user} received ${l.packets_received} of ${sent}`);
        }
      }
    } finally {
      broadcast.kill('SIGTERM');
    }
  });

  // A caster live on A (fc25-send, left live when it disconnects) and one friend of hers on B, whose presence
  // socket has seen her go live: { name, lis, watcher, live, broadcast }.
  async function casterOnAListenerOnB(prefix) {
    const caster = new Client(A.url);
    const name = uniqueName('caster');
    await caster.register(name, password);
    const lis = uniqueName(prefix);
    const l = new Client(B.url);
    await l.register(lis, password);
    await makeFriends(caster, l);
    const watcher = l.openPresence();
    await watcher.ready;
    const broadcast = spawn(sendBin, ['--port', String(A.port), '--password', password, '--user', name,
      '--wav', speech, '--seconds', '60', '--no-stop'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const live = await watcher.next((m) => m.type === 'streaming_status' && m.is_streaming && m.username === name, 15000);
    return { caster, name, lis, l, watcher, live, broadcast };
  }

  // The relay runs node to node: Redis and PostgreSQL going away under it stop no process and no audio; once they
  // are back, the stream stops normally and everyone is told.
  it('Redis restarted and PostgreSQL stopped and started while a relay runs: audio goes on, no process exits', async (t) => {
    const { caster, name, lis, watcher, live, broadcast } = await casterOnAListenerOnB('lr');
    try {
      await sleep(500);
      const listening = send(B, ['--listen', name, '--user', lis, '--streams', '1', '--seconds', '12']);
      await until(async () => (await health(B)).relays.in.relays === 1, 5000, 'the relay open');
      const p0 = (await health(B)).relays.in.packets;
      await redis.kill();
      pg.stop();
      await sleep(3000);
      const p1 = (await health(B)).relays.in.packets;
      assert.ok(p1 - p0 >= 2.4 * perS, `the relay carried ${p1 - p0} packets in 3 s without Redis and PostgreSQL`);
      redis = await startRedis({ port: redis.port });
      pg.start();
      const [result] = (await listening).filter((x) => !x.summary);
      t.diagnostic(`listener received ${result.packets_received} packets over 12 s; relay ${p1 - p0} packets in the 3 s without Redis/PostgreSQL`);
      assert.equal(result.error, undefined, JSON.stringify(result));
      assert.ok(result.packets_received >= 0.95 * 12 * perS, `${result.packets_received} packets in 12 s`);
      assert.equal(A.proc.exitCode, null, 'A runs');
      assert.equal(B.proc.exitCode, null, 'B runs');
      // Both back: the stream stops as usual and the store says so.
      await until(async () => (await health(A)).cluster_nodes === 2, 5000, 'A sees B again through Redis');
      await until(async () => (await caster.post('/api/stream/stop', { session_id: live.session_id })).body?.stopped,
        10000, 'Stop once PostgreSQL is back');
      const [row] = await until(async () => {
        const rows = psqlRows(`SELECT end_reason FROM stream_sessions WHERE id = ${live.session_id}`);
        return rows[0]?.end_reason ? rows : null;
      }, 5000, 'the session row ended');
      assert.equal(row.end_reason, 'user');
    } finally {
      broadcast.kill('SIGKILL');
      watcher.close();
    }
  });

  it('the origin node killed: the relay\'s listener on B hears node_lost within 6 s; A restarted, her recording plays from B', async (t) => {
    const { name, lis, l, watcher, live, broadcast } = await casterOnAListenerOnB('lk');
    try {
      await sleep(1000);
      const listening = send(B, ['--listen', name, '--user', lis, '--streams', '1', '--seconds', '30']);
      await until(async () => (await health(B)).relays.in.listeners === 1, 8000, 'the listener on B');
      await sleep(1000);
      await A.kill();
      const killedAt = Date.now();
      const [result] = (await listening).filter((x) => !x.summary);
      assert.equal(result.ended_by_server, 'node_lost', JSON.stringify(result));
      const after = result.ended_at_ms - killedAt;
      t.diagnostic(`listen_ended node_lost ${after.toFixed(0)} ms after the kill`);
      assert.ok(after <= 6000, `told ${after.toFixed(0)} ms after the kill`);
      assert.equal((await health(B)).relays.in.relays, 0, 'the relay is gone');
      assert.match(B.logs(), /relay of session=\d+ from \S+ ended \(node_lost\) with 1 listeners here/);

      // A starts again on its disk: it repairs the recording the kill cut short and writes its row; bob's friend on
      // B plays it through B, which asks A for it.
      const [ended] = psqlRows(`SELECT end_reason FROM stream_sessions WHERE id = ${live.session_id}`);
      assert.equal(ended.end_reason, 'node_lost');
      A = await startServer({ env, dataDir: A.dataDir, args: ['--database-url', pg.url] });
      await until(async () => {
        const res = await fetch(`${B.url}/api/cluster`, { headers: { Authorization: `Bearer ${secret}` } });
        return (await res.json()).nodes.some((n) => n.url === A.url);
      }, 8000, 'B sees the new A');
      const rec = await until(async () => (await l.get(`/api/recordings?username=${name}`)).body.recordings?.[0],
        5000, 'the repaired recording listed');
      assert.equal(rec.session_id, live.session_id);
      assert.equal(rec.end_reason, 'node_lost');
      const res = await fetch(B.url + rec.url, { headers: { Cookie: l.cookieHeader() } });
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200);
      const onA = fs.readFileSync(path.join(A.dataDir, 'streamed_audios', `${name}_${live.session_id}.wav`));
      assert.ok(bytes.equals(onA), `B served A's ${onA.length} bytes (${bytes.length})`);
      t.diagnostic(`repaired recording: ${rec.duration_s} s, ${bytes.length} bytes through B`);
      assert.ok(rec.duration_s >= 1.5, `what reached A's disk before the kill (${rec.duration_s} s)`);
    } finally {
      broadcast.kill('SIGKILL');
      watcher.close();
    }
  });
});
