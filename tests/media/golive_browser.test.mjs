// Going live for real, in Chromium with a fake microphone playing a file, inside the test network namespace: the
// server receives the audio over WebRTC, denoises it and records it (clean and, with FC25_RECORD_RAW=1, raw).
// Every way a stream ends finalises its recording.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { chromium } from 'playwright-core';

import { ltasDb, pearson, readWav, rmsDb } from '../support/audio.mjs';
import { chromiumArgs, chromiumPath, goLive, launchBrowser, loggedInPage as openDashboard, mediaArgs, requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { sharedDir, startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const noiseFile = path.join(sharedDir, 'audio/libdf/noise_freesound_573577.wav');
const speechFile = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
// A dropped page is waited for 2 s (15 s by default), so that a killed browser ends its stream soon.
const serverEnv = { FC25_RECORD_RAW: '1', FC25_MODEL_DIR: modelDir, FC25_RECONNECT_GRACE_S: '2' };

// Counts microphone requests: a page load must never make one.
function countMicRequests() {
  window.__micRequests = 0;
  const orig = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { window.__micRequests++; return orig(c); };
}
const loggedInPage = (browser, server, name) => openDashboard(browser, server, name, { initScript: countMicRequests });

const sessionsOf = (server, name) => query(server.dbPath,
  `SELECT s.* FROM stream_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = '${name}' ORDER BY s.id`);
const recordingOf = (server, sessionId) => query(server.dbPath,
  `SELECT * FROM stream_recordings WHERE session_id = ${sessionId}`)[0];

async function waitFor(fn, timeoutMs = 5000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// The session's recording row, file and raw twin, checked to be complete and as long as the stream was live.
function checkRecording(server, session, { liveMs, toleranceS = 0.5 } = {}) {
  const row = recordingOf(server, session.id);
  assert.ok(row, `a stream_recordings row for session ${session.id}`);
  const file = path.join(server.dataDir, row.path);
  assert.equal(row.path, `streamed_audios/${path.basename(file)}`);
  assert.match(path.basename(file), new RegExp(`_${session.id}\\.wav$`));
  assert.equal(fs.statSync(file).size, row.bytes, 'row bytes = file size');
  const clean = readWav(file);
  assert.equal(clean.rate, 48000);
  const seconds = clean.samples.length / 48000;
  assert.ok(Math.abs(seconds - row.duration_ms / 1000) < 0.01, `row duration ${row.duration_ms} ms = file ${seconds} s`);
  const live = (liveMs ?? (session.ended_at - session.started_at)) / 1000;
  assert.ok(Math.abs(seconds - live) <= toleranceS, `recording ${seconds.toFixed(2)} s vs live ${live.toFixed(2)} s`);
  const rawFile = file.replace(/\.wav$/, '_raw.wav');
  const raw = fs.existsSync(rawFile) ? readWav(rawFile) : null;
  return { row, file, clean, raw, seconds };
}

// A server and a browser whose fake microphone plays `audioFile`, for the tests of one describe block.
function serverAndBrowser(audioFile) {
  const env = {};
  before(async () => {
    env.server = await startServer({ env: serverEnv });
    env.browser = await launchBrowser({ audioFile });
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

describe('going live from Chromium', () => {
  before(() => requireTestNetwork());

  describe('noise-only input', () => {
    const env = serverAndBrowser(noiseFile);

    it('records ~6 s, as long as the stream was live, with the noise at least 15 dB down', async (t) => {
      const { server, browser } = env;
      const alice = uniqueName('alice');
      const { page } = await loggedInPage(browser, server, alice);
      assert.equal(await page.evaluate(() => window.__micRequests), 0, 'no microphone request on page load');
      await sleep(500);
      assert.equal(sessionsOf(server, alice).length, 0, 'a page load starts no stream');
      await goLive(page);
      assert.equal(await page.evaluate(() => window.__micRequests), 1, 'the microphone is asked for on the click');
      assert.equal(await page.textContent('[data-testid=denoiser-note]'), '', 'no warning: the model runs');
      // The level meter moves with the (noisy) input.
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=level]').dataset.db) > -50,
        null, { timeout: 3000 });
      // The noise meter: a noise recording is a noisy room, and most of it goes.
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=noise-meter]').dataset.removed) >= 15,
        null, { timeout: 5000 });
      // The word is taken from the last two seconds, so it may still say what the stream's first moments were.
      await page.waitForFunction(
        () => /^(loud|moderate)$/.test(document.querySelector('[data-testid=noise-background]').textContent),
        null, { timeout: 3000 }).catch(() => {});
      assert.match(await page.textContent('[data-testid=noise-background]'), /^(loud|moderate)$/);
      assert.match(await page.textContent('[data-testid=noise-removed]'), /^\d+ dB$/);
      await sleep(5000);
      await page.click('[data-testid=stop]');
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      const [session] = sessionsOf(server, alice);
      assert.equal(session.end_reason, 'user');
      const { clean, raw, row } = checkRecording(server, session);
      assert.ok(raw, 'FC25_RECORD_RAW=1 keeps the raw input');
      assert.equal(raw.samples.length, clean.samples.length, 'raw and clean are aligned, same length');
      // Judge from 1 s in (the first second includes connection set-up) to the end.
      const rawDb = rmsDb(raw.samples, 48000, 1), cleanDb = rmsDb(clean.samples, 48000, 1);
      assert.ok(rawDb > -50, `the raw recording holds the noise (${rawDb.toFixed(1)} dBFS)`);
      t.diagnostic(`noise: raw ${rawDb.toFixed(1)} dBFS, clean ${cleanDb.toFixed(1)} dBFS, reduction ${(rawDb - cleanDb).toFixed(1)} dB`);
      assert.ok(rawDb - cleanDb >= 15, `noise reduced by ${(rawDb - cleanDb).toFixed(1)} dB (raw ${rawDb.toFixed(1)}, clean ${cleanDb.toFixed(1)})`);
      // Listed on the dashboard with a player that can play it.
      const item = page.locator(`[data-testid=recording-${row.id}]`);
      await item.waitFor({ timeout: 3000 });
      const duration = await item.locator('audio').evaluate((a) => new Promise((resolve, reject) => {
        if (a.readyState >= 1) return resolve(a.duration);
        a.addEventListener('loadedmetadata', () => resolve(a.duration));
        a.addEventListener('error', () => reject(new Error('audio error')));
      }));
      assert.ok(Math.abs(duration - row.duration_ms / 1000) < 0.05, `player duration ${duration}`);
      // With what noise removal did: the row's mean, and the list says it.
      assert.ok(row.noise_removed_db >= 15, `the row notes ${row.noise_removed_db} dB removed`);
      assert.equal(await page.textContent(`[data-testid=noise-removed-${row.id}]`),
        ` · noise removed ${Math.round(row.noise_removed_db)} dB`);
      assert.deepEqual(JSON.parse(row.strength_log), [{ at_ms: 0, strength: 'full' }]);
      assert.equal(await page.locator('[data-testid=noise-meter]').isHidden(), true, 'no meter once stopped');
    });

    it('the strength changes while live: Light from then on, noted in the row, the same session', async (t) => {
      const { server, browser } = env;
      const alice = uniqueName('alice');
      const { page } = await loggedInPage(browser, server, alice);
      await goLive(page);
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=noise-meter]').dataset.removed) >= 15,
        null, { timeout: 5000 });
      await sleep(2000);
      const [live] = sessionsOf(server, alice);
      const changedAt = Date.now();
      await page.check('[data-testid=strength-light]');
      await page.waitForFunction(() => /^Light/.test(document.querySelector('[data-testid=strength-note]').textContent),
        null, { timeout: 2000 });
      // The meter follows: at most 12 dB removed now (readings are 250 ms; give it two).
      await sleep(600);
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=noise-meter]').dataset.removed) <= 13,
        null, { timeout: 2000 });
      await sleep(3000);
      await page.click('[data-testid=stop]');
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      const sessions = sessionsOf(server, alice);
      assert.equal(sessions.length, 1, 'one session: changing the strength started no new one');
      assert.equal(sessions[0].id, live.id);
      const { clean, raw, row } = checkRecording(server, sessions[0]);
      const log = JSON.parse(row.strength_log);
      assert.equal(log.length, 2);
      assert.deepEqual(log[0], { at_ms: 0, strength: 'full' });
      assert.equal(log[1].strength, 'light');
      const expectedAt = changedAt - sessions[0].started_at;
      assert.ok(Math.abs(log[1].at_ms - expectedAt) < 1000, `change noted at ${log[1].at_ms} ms (pressed at ~${expectedAt})`);
      // The recording: before the change well over 15 dB removed, after it at most 12.
      const cut = Math.round(log[1].at_ms / 1000 * 48000);
      const part = (w, from, to) => w.samples.subarray(from, to);
      const reduction = (from, to) => {
        const r = rmsDb(part(raw, from, to), 48000, 0), c = rmsDb(part(clean, from, to), 48000, 0);
        return r - c;
      };
      const before = reduction(48000, cut - 4800), afterCut = reduction(cut + 9600, raw.samples.length - 4800);
      t.diagnostic(`reduction before the change ${before.toFixed(1)} dB, after ${afterCut.toFixed(1)} dB`);
      assert.ok(before >= 15, `before: ${before.toFixed(1)} dB`);
      // Light lowers the noise by at most 12 dB (less where the model hears the noise as speech).
      assert.ok(afterCut < 12.5, `after: ${afterCut.toFixed(1)} dB, over Light's limit of 12`);
      assert.ok(afterCut > 3 && before - afterCut > 8, `after: ${afterCut.toFixed(1)} dB: Light removes some, and less`);
    });
  });

  describe('speech input', () => {
    const env = serverAndBrowser(speechFile);

    it('keeps the speech: level within 6 dB of the input and the same spectral envelope', async (t) => {
      const { server, browser } = env;
      const alice = uniqueName('alice');
      const { page } = await loggedInPage(browser, server, alice);
      await goLive(page);
      await sleep(6000);
      await page.click('[data-testid=stop]');
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      const [session] = sessionsOf(server, alice);
      const { clean, raw } = checkRecording(server, session);
      const source = readWav(speechFile);
      const rawDb = rmsDb(raw.samples, 48000, 1), cleanDb = rmsDb(clean.samples, 48000, 1);
      assert.ok(Math.abs(cleanDb - rawDb) <= 6, `clean ${cleanDb.toFixed(1)} dBFS vs input ${rawDb.toFixed(1)} dBFS`);
      // The long-term spectrum in third-octave bands (100 Hz-8 kHz): a denoiser that keeps speech keeps its shape;
      // one that muffles it, or drops a band, does not. Compared with what the server received and with the file.
      const envelope = ltasDb(clean.samples.subarray(48000));
      const rEnv = pearson(envelope, ltasDb(raw.samples.subarray(48000)));
      const sEnv = pearson(envelope, ltasDb(source.samples));
      t.diagnostic(`speech: clean ${cleanDb.toFixed(1)} dBFS vs input ${rawDb.toFixed(1)} dBFS; envelope r=${rEnv.toFixed(3)} (input), ${sEnv.toFixed(3)} (file)`);
      assert.ok(rEnv >= 0.95, `envelope correlation with the received input ${rEnv.toFixed(3)}`);
      assert.ok(sEnv >= 0.9, `envelope correlation with the source file ${sEnv.toFixed(3)}`);
    });
  });

  describe('every way a page goes away', () => {
    const env = serverAndBrowser(speechFile);

    it('the socket dies with the offer in it: the page offers again once it is back, and the stream goes on', async (t) => {
      const { server, browser } = env;
      const alice = uniqueName('alice');
      // The presence socket takes the page's first offer and then dies, as one the server has already dropped
      // does: the browser accepts the message, and only after that finds the connection gone.
      const { page } = await openDashboard(browser, server, alice, { initScript: () => {
        const send = WebSocket.prototype.send;
        window.__offersLost = 0;
        WebSocket.prototype.send = function (data) {
          if (window.__offersLost === 0 && typeof data === 'string' && data.includes('"webrtc_offer"')) {
            window.__offersLost = 1;
            setTimeout(() => this.close(4000, 'gone'), 100);
            return undefined;
          }
          return send.call(this, data);
        };
      } });
      const startedAt = Date.now();
      await goLive(page);
      t.diagnostic(`connected ${Date.now() - startedAt} ms after Go live`);
      assert.equal(await page.evaluate(() => window.__offersLost), 1, 'the first offer was lost');
      assert.equal(await page.evaluate(() => document.body.dataset.mediaReconnects), '1', 'one new connection');
      await sleep(2000);
      await page.click('[data-testid=stop]');
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      const sessions = sessionsOf(server, alice);
      assert.equal(sessions.length, 1, 'one session');
      assert.equal(sessions[0].end_reason, 'user');
      const { seconds } = checkRecording(server, sessions[0], { toleranceS: 1.5 });
      assert.ok(seconds >= 1.5, `audio recorded once connected (${seconds.toFixed(2)} s)`);
    });

    it('reload mid-stream: ended page_unload, recording finalised, nothing restarts', async () => {
      const { server, browser } = env;
      const alice = uniqueName('alice');
      const { page } = await loggedInPage(browser, server, alice);
      await goLive(page);
      await sleep(2500);
      await page.reload();
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      const session = await waitFor(() => sessionsOf(server, alice).find((s) => s.ended_at), 3000, 'the stream to end');
      assert.equal(session.end_reason, 'page_unload');
      checkRecording(server, session);
      await sleep(1000);
      assert.equal(sessionsOf(server, alice).length, 1, 'the reloaded page started nothing');
      assert.equal(await page.evaluate(() => window.__micRequests), 0, 'the reloaded page did not ask for the microphone');
    });

    it('the browser process killed: ended socket_closed once the reconnect grace (2 s here) runs out, recording finalised', async (t) => {
      const { server } = env;
      const alice = uniqueName('alice');
      const client = new Client(server.url);
      await client.register(alice);
      // A browser of its own, so that killing it leaves the others alone.
      const bs = await chromium.launchServer({ executablePath: chromiumPath, headless: true,
        args: [...chromiumArgs, ...mediaArgs(speechFile)] });
      const b = await chromium.connect(bs.wsEndpoint());
      const ctx = await b.newContext();
      await ctx.addCookies([...client.cookies].map(([n, value]) => ({ name: n, value, domain: '127.0.0.1', path: '/' })));
      const page = await ctx.newPage();
      await page.goto(server.url + '/');
      await goLive(page);
      await sleep(2000);
      const killedAt = Date.now();
      bs.process().kill('SIGKILL');
      const session = await waitFor(() => sessionsOf(server, alice).find((s) => s.ended_at), 6000, 'the stream to end');
      assert.equal(session.end_reason, 'socket_closed');
      t.diagnostic(`browser killed: stream ended ${session.ended_at - killedAt} ms later`);
      // 250 ms for a beacon that never comes, then the grace; never before the grace.
      assert.ok(session.ended_at - killedAt >= 2000, `not ended before the grace (${session.ended_at - killedAt} ms)`);
      assert.ok(session.ended_at - killedAt <= 4000, `ended ${session.ended_at - killedAt} ms after the kill`);
      // The recording holds what was heard: up to the kill (the grace after it had no audio to keep).
      checkRecording(server, session, { liveMs: killedAt - session.started_at });
      await b.close().catch(() => {});
    });
  });

  describe('server stops mid-stream', () => {
    let browser;
    before(async () => { browser = await launchBrowser({ audioFile: speechFile }); });
    after(async () => { await browser?.close(); });

    it('SIGTERM: the recording is finalised and the session ended server_shutdown', async () => {
      const server = await startServer({ env: serverEnv });
      const alice = uniqueName('alice');
      const { page } = await loggedInPage(browser, server, alice);
      await goLive(page);
      await sleep(3000);
      assert.equal(await server.stop('SIGTERM'), 0);
      const [session] = sessionsOf(server, alice);
      assert.equal(session.end_reason, 'server_shutdown');
      checkRecording(server, session);
      await page.close();
    });

    it('SIGKILL: after a restart the recording is repaired, the session ended server_restart and listed', async (t) => {
      const server = await startServer({ env: serverEnv });
      const alice = uniqueName('alice');
      const { page, client } = await loggedInPage(browser, server, alice);
      await goLive(page);
      await sleep(3500);
      const [live] = sessionsOf(server, alice);
      const killedAt = Date.now();
      await server.kill();
      await page.close();
      // What the crash left: a WAV whose header is up to a second stale.
      const file = path.join(server.dataDir, 'streamed_audios', `${alice}_${live.id}.wav`);
      assert.ok(fs.existsSync(file));
      const restarted = await startServer({ env: serverEnv, dataDir: server.dataDir });
      try {
        const session = await waitFor(() => sessionsOf(restarted, alice).find((s) => s.ended_at), 5000, 'the orphan to end');
        assert.equal(session.end_reason, 'server_restart');
        // All the audio up to at most ~1 s before the kill.
        const { seconds, row } = checkRecording(restarted, session, { liveMs: killedAt - live.started_at, toleranceS: 1.0 });
        t.diagnostic(`crash: live ${((killedAt - live.started_at) / 1000).toFixed(2)} s until the kill, repaired recording ${seconds.toFixed(2)} s`);
        assert.ok(seconds >= 3.0, `repaired recording holds ${seconds.toFixed(2)} s`);
        const c2 = new Client(restarted.url);
        await c2.login(alice);
        const list = await c2.get('/api/recordings');
        assert.equal(list.status, 200);
        assert.deepEqual(list.body.recordings.map((r) => r.id), [row.id]);
        assert.equal(list.body.recordings[0].end_reason, 'server_restart');
        void client;
      } finally {
        await restarted.stop();
      }
    });
  });

  describe('recordings on the web', () => {
    const env = serverAndBrowser(speechFile);

    it('owner and friends play it with Range; others cannot; the owner deletes file and row', async () => {
      const { server, browser } = env;
      const alice = uniqueName('alice');
      const { page, client } = await loggedInPage(browser, server, alice);
      await goLive(page);
      await sleep(2000);
      await page.click('[data-testid=stop]');
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      const [session] = sessionsOf(server, alice);
      const { row, file } = checkRecording(server, session);
      const url = `/media/recordings/${row.id}.wav`;

      const bob = new Client(server.url);
      await bob.register(uniqueName('bob'));
      const carol = new Client(server.url);
      await carol.register(uniqueName('carol'));
      await makeFriends(client, bob);

      const whole = fs.readFileSync(file);
      const part = await bob.get(url, { headers: { Range: 'bytes=100-199' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 100-199/${whole.length}`);
      const bytes = Buffer.from(await (await fetch(server.url + url, { headers: { Cookie: bob.cookieHeader(), Range: 'bytes=100-199' } })).arrayBuffer());
      assert.deepEqual(bytes, whole.subarray(100, 200));
      const tail = await fetch(server.url + url, { headers: { Cookie: bob.cookieHeader(), Range: 'bytes=-10' } });
      assert.deepEqual(Buffer.from(await tail.arrayBuffer()), whole.subarray(whole.length - 10));
      const bad = await bob.get(url, { headers: { Range: `bytes=${whole.length + 5}-` } });
      assert.equal(bad.status, 416);
      assert.equal((await bob.get(`/api/recordings?username=${alice}`)).body.recordings.length, 1);

      assert.equal((await carol.get(url)).status, 404, 'not a friend: as if it did not exist');
      assert.equal((await carol.get(`/api/recordings?username=${alice}`)).status, 403);
      assert.equal((await new Client(server.url).get(url)).status, 401);
      assert.equal((await bob.del(`/api/recordings/${row.id}`)).status, 403, 'a friend may not delete');
      assert.ok(fs.existsSync(file));

      const del = await client.del(`/api/recordings/${row.id}`);
      assert.equal(del.status, 200);
      assert.equal(fs.existsSync(file), false, 'the file is gone');
      assert.equal(fs.existsSync(file.replace(/\.wav$/, '_raw.wav')), false, 'the raw twin too');
      assert.equal(recordingOf(server, session.id), undefined, 'the row is gone');
      assert.equal((await client.get(url)).status, 404);
    });
  });
});
