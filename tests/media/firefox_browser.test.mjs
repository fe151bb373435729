// The go-live, listen and recording flows in Firefox ESR (WebDriver BiDi), inside the test network namespace: Firefox's
// own WebRTC sends a microphone to fc25, a friend listens in Firefox, and the recording plays there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { readWav, rmsDb } from '../support/audio.mjs';
import { requireTestNetwork } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { fakeMicrophone, firefoxPage, launchFirefox } from '../support/firefox.mjs';
import { sharedDir, startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const speechFile = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('Firefox', () => {
  let server, browser;
  before(async () => {
    requireTestNetwork();
    server = await startServer({ env: { FC25_MODEL_DIR: modelDir } });
    browser = await launchFirefox();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('goes live, a friend listens and hears it, the recording plays', async (t) => {
    const alice = new Client(server.url);
    await alice.register(uniqueName('alice'));
    const bob = new Client(server.url);
    await bob.register(uniqueName('bob'));
    await makeFriends(alice, bob);
    const a = await firefoxPage(browser, server, alice.username, 'correct horse', { initScript: fakeMicrophone(speechFile) });
    assert.equal(await a.page.evaluate(() => window.__micRequests), 0, 'no microphone asked for on load');

    await a.page.click('[data-testid=go-live]');
    try {
      await a.page.waitForFunction(() => document.body.dataset.mediaState === 'connected', { timeout: 15000 });
    } catch (e) {  // say what the page said
      t.diagnostic(`state ${await a.page.evaluate(() => document.body.dataset.mediaState)}; error: ${await a.page.evaluate(() => document.querySelector('[data-testid=live-error]').textContent)}`);
      throw e;
    }
    const liveAt = Date.now();
    await a.page.waitForFunction(() => Number(document.querySelector('[data-testid=level]').dataset.db) > -40,
      { timeout: 5000 });

    const b = await firefoxPage(browser, server, bob.username, 'correct horse');
    await b.page.goto(`${server.url}/u/${alice.username}`);
    await b.page.waitForSelector('[data-testid=listen]:not([hidden])', { timeout: 5000 });
    await b.page.click('[data-testid=listen]');
    await b.page.waitForFunction(() => document.body.dataset.listenState === 'connected', { timeout: 15000 });
    await b.page.waitForFunction(() => Number(document.querySelector('[data-testid=listen-level]').dataset.maxDb) > -40,
      { timeout: 5000 });
    await sleep(2000);
    const stats = await b.page.evaluate(() => window.fc25ReceiveStats());
    t.diagnostic(`bob in Firefox received ${stats.packetsReceived} packets, ${stats.packetsLost} lost`);
    assert.ok(stats.packetsReceived > 50, `packets received in 2 s: ${stats.packetsReceived}`);

    await a.page.click('[data-testid=stop]');
    await a.page.waitForSelector('[data-testid=go-live]:not([hidden])');
    const liveS = (Date.now() - liveAt) / 1000;
    await b.page.waitForFunction(() => /ended/.test(document.querySelector('[data-testid=listen-note]').textContent),
      { timeout: 5000 });
    const [row] = query(server.dbPath, `SELECT r.* FROM stream_recordings r JOIN users u ON u.id = r.user_id
      WHERE u.username = '${alice.username}'`);
    assert.ok(row, 'a recording row');
    const wav = readWav(path.join(server.dataDir, row.path));
    const seconds = wav.samples.length / 48000;
    t.diagnostic(`recording ${seconds.toFixed(2)} s (live ~${liveS.toFixed(2)} s), ${rmsDb(wav.samples, 48000, 1).toFixed(1)} dBFS`);
    assert.ok(Math.abs(seconds - liveS) < 1.5, `recording ${seconds} s for ~${liveS} s live`);
    assert.ok(rmsDb(wav.samples, 48000, 1) > -40, 'the speech is in it');

    // bob plays it in Firefox, from his page of alice.
    await b.page.reload();
    const item = `[data-testid=recording-${row.id}] audio`;
    await b.page.waitForSelector(item, { timeout: 5000 });
    const duration = await b.page.$eval(item, (el) => new Promise((resolve, reject) => {
      if (el.readyState >= 1) return resolve(el.duration);
      el.addEventListener('loadedmetadata', () => resolve(el.duration));
      el.addEventListener('error', () => reject(new Error('audio error')));
    }));
    assert.ok(Math.abs(duration - row.duration_ms / 1000) < 0.05, `Firefox's player says ${duration} s`);
    await b.page.$eval(item, (el) => el.play());
    await b.page.waitForFunction((sel) => document.querySelector(sel).currentTime > 0.3, { timeout: 5000 }, item);
    assert.ok(fs.existsSync(path.join(server.dataDir, row.path)));
    await a.context.close();
    await b.context.close();
  });
});
