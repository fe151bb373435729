// Listening live in Chromium: alice broadcasts speech from a fake microphone; bob, her friend, presses Listen and
// hears the clean audio; carol, not a friend, is refused; when alice stops, bob's page says so and his
// connection closes; afterwards the recording plays in bob's page, with its waveform drawn from the file.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { serverAndBrowser } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { sharedDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';
import { readWav } from '../support/audio.mjs';

const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('listening live in Chromium', () => {
  const started = serverAndBrowser({ serverOptions: { env: { FC25_MODEL_DIR: modelDir } }, audioFile: speech });
  let server, browser;
  before(() => ({ server, browser } = started));
  const health = async () => (await (await fetch(server.url + '/api/health')).json());

  async function user(name) {
    const client = new Client(server.url);
    await client.register(name);
    const ctx = await browser.newContext();
    await ctx.addCookies([...client.cookies].map(([n, value]) => ({ name: n, value, domain: '127.0.0.1', path: '/' })));
    return { name, client, ctx, page: await ctx.newPage() };
  }

  it('a friend hears the stream within a second or two; others are refused; the end reaches the listener', async (t) => {
    const alice = await user(uniqueName('alice'));
    const bob = await user(uniqueName('bob'));
    const carol = await user(uniqueName('carol'));
    await makeFriends(alice.client, bob.client);

    await alice.page.goto(server.url + '/');
    await alice.page.click('[data-testid=go-live]');
    await alice.page.waitForFunction(() => document.body.dataset.mediaState === 'connected', null, { timeout: 10000 });

    // Bob: the friend page shows alice live with her timer; he listens.
    await bob.page.goto(`${server.url}/u/${alice.name}`);
    await bob.page.waitForSelector('[data-testid=friend-timer]:not([hidden])');
    const clicked = Date.now();
    await bob.page.click('[data-testid=listen]');
    await bob.page.waitForFunction(() => Number(document.querySelector('[data-testid=listen-level]').dataset.maxDb) > -50,
      null, { timeout: 2500 });
    const heardAfter = Date.now() - clicked;
    const s1 = await bob.page.evaluate(() => window.fc25ReceiveStats());
    await sleep(2000);
    const s2 = await bob.page.evaluate(() => window.fc25ReceiveStats());
    const concealed = (s2.concealedSamples - s1.concealedSamples) / Math.max(1, s2.totalSamplesReceived - s1.totalSamplesReceived);
    t.diagnostic(`heard after ${heardAfter} ms; ${s2.packetsReceived - s1.packetsReceived} packets in 2 s, ` +
      `${(100 * concealed).toFixed(2)} % concealed, lost ${s2.packetsLost}`);
    assert.ok(s2.packetsReceived - s1.packetsReceived >= 180, `packets of 10 ms keep arriving (${s1.packetsReceived} -> ${s2.packetsReceived})`);
    assert.ok(concealed < 0.02, `little concealment (${(100 * concealed).toFixed(2)} %)`);
    await alice.page.waitForSelector('[data-testid=listener-count][data-count="1"]', { timeout: 2000 });
    assert.match(await alice.page.textContent('[data-testid=listener-count]'), /1 listener/);

    // Carol is not a friend: the page refuses her and the server creates nothing.
    const held = async () => { const h = await health(); return h.media_pipelines + h.listener_connections; };
    const before = await held();
    await carol.page.goto(`${server.url}/u/${alice.name}`);
    await carol.page.waitForSelector('[data-testid=error]:has-text("not friends")');
    assert.equal(await carol.page.locator('[data-testid=listen]').isVisible(), false);
    // Even a hand-made listen request on her socket is refused.
    const sock = carol.client.openPresence();
    await sock.ready;
    sock.send({ type: 'listen_offer', username: alice.name, sdp: 'v=0\r\n' });
    const refusal = await sock.next((m) => m.type === 'error');
    assert.equal(refusal.error.code, 'not_friends');
    sock.close();
    assert.equal(await held(), before);

    // Alice stops: bob's page shows offline and his connection is gone.
    await alice.page.click('[data-testid=stop]');
    await bob.page.waitForSelector('[data-testid=friend-state]:has-text("Offline")', { timeout: 2000 });
    await bob.page.waitForSelector('[data-testid=listen-note]:has-text("ended")', { timeout: 2000 });
    assert.equal(await bob.page.evaluate(() => window.fc25ReceiveStats()), null, 'no connection left');
    assert.equal(await bob.page.locator('[data-testid=listen]').isVisible(), false);
    const end = Date.now() + 3000;
    while (await held() !== 0 && Date.now() < end) await sleep(50);
    assert.equal(await held(), 0, 'no pipeline or listener connection left');

    // The recording is listed on bob's page and plays there (seekable, its full length).
    const rec = query(server.dbPath, `SELECT r.* FROM stream_recordings r JOIN users u ON u.id = r.user_id WHERE u.username = '${alice.name}'`)[0];
    assert.ok(rec);
    const item = bob.page.locator(`[data-testid=recording-${rec.id}]`);
    await item.waitFor({ timeout: 3000 });
    const played = await item.locator('audio').evaluate((a) => new Promise((resolve, reject) => {
      const done = () => resolve({ duration: a.duration, seekable: a.seekable.length ? a.seekable.end(0) : 0 });
      if (a.readyState >= 4) return done();
      a.addEventListener('canplaythrough', done, { once: true });
      a.addEventListener('error', () => reject(new Error('audio error')));
      a.preload = 'auto';
      a.load();
    }));
    assert.ok(Math.abs(played.duration - rec.duration_ms / 1000) < 0.05, `duration ${played.duration} vs ${rec.duration_ms} ms`);
    assert.ok(played.seekable > 0, 'seekable');

    // Its waveform: the loudest sample of each stretch, as computed here from the file on disk.
    const wav = readWav(path.join(server.dataDir, rec.path));
    const n = 200;
    const expected = new Array(n).fill(0);
    wav.samples.forEach((x, i) => {
      const b = Math.min(n - 1, Math.floor((i * n) / wav.samples.length));
      expected[b] = Math.max(expected[b], Math.abs(x));
    });
    const peaks = await bob.client.get(`/api/recordings/${rec.id}/peaks?buckets=${n}`);
    assert.equal(peaks.status, 200);
    assert.equal(peaks.body.peaks.length, n);
    assert.ok(Math.abs(peaks.body.duration_s - rec.duration_ms / 1000) < 0.001);
    const worst = Math.max(...expected.map((e, i) => Math.abs(e - peaks.body.peaks[i])));
    assert.ok(worst < 0.002, `peaks differ from the file by up to ${worst}`);
    assert.ok(Math.max(...expected) > 0.05, 'the recording is not silent');
    assert.equal((await carol.client.get(`/api/recordings/${rec.id}/peaks`)).status, 404);
    const bad = await bob.client.get(`/api/recordings/${rec.id}/peaks?buckets=5`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /buckets/);

    // Drawn on bob's page (bars, not a blank canvas), and a click there moves the player.
    const canvas = item.locator('canvas.waveform');
    await bob.page.waitForFunction((id) => document.querySelector(`[data-testid=waveform-${id}]`)?.dataset.state === 'drawn', rec.id);
    const inked = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n / (c.width * c.height);
    });
    assert.ok(inked > 0.05 && inked < 0.95, `waveform covers ${(100 * inked).toFixed(1)} % of its canvas`);
    const box = await canvas.boundingBox();
    await canvas.click({ position: { x: box.width * 0.75, y: box.height / 2 } });
    const at = await item.locator('audio').evaluate((a) => a.currentTime / a.duration);
    assert.ok(Math.abs(at - 0.75) < 0.05, `a click at 75 % moved the player to ${(100 * at).toFixed(1)} %`);
    // And from the keyboard: it is a slider that says where the player is.
    await canvas.focus();
    await bob.page.keyboard.press('Home');
    await bob.page.waitForFunction((id) => document.querySelector(`[data-testid=waveform-${id}]`).getAttribute('aria-valuenow') === '0', rec.id);
    await bob.page.keyboard.press('ArrowRight');
    const { now, duration } = await item.locator('audio').evaluate((a) => ({ now: a.currentTime, duration: a.duration }));
    assert.ok(Math.abs(now - Math.min(5, duration)) < 0.1, `ArrowRight moved the player 5 s (to ${now.toFixed(2)} s)`);
    assert.match(await canvas.getAttribute('aria-valuetext'), /^0:0[0-5] of \d+:\d\d$/);

    // Alice goes live again: bob's page offers Listen and no longer says the stream ended.
    await alice.page.click('[data-testid=go-live]');
    await bob.page.waitForSelector('[data-testid=listen]:visible', { timeout: 3000 });
    assert.equal(await bob.page.textContent('[data-testid=listen-note]'), '');
    await alice.page.click('[data-testid=stop]');
    await bob.page.waitForSelector('[data-testid=friend-state]:has-text("Offline")', { timeout: 2000 });
  });
});
