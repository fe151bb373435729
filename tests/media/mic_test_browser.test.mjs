// Test microphone, in Chromium inside the test network namespace: the page's microphone goes to the server and
// comes straight back denoised, within a second of pressing, with noise removal switchable while listening and
// the noise meter below; nothing is recorded, no friend sees it, and it ends by itself after the limit.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { loggedInPage, serverAndBrowser } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { noiseWav } from '../support/recordings.mjs';
import { sharedDir, tempDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const speechFile = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
// Steady noise at -30 dBFS, so that every stretch of the loop is as loud as any other.
const noiseFile = path.join(tempDir('fc25-noise-'), 'noise.wav');
fs.writeFileSync(noiseFile, noiseWav(10, 0.03));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const serverOptions = (limitS) => ({ env: { FC25_MODEL_DIR: modelDir, FC25_MIC_TEST_S: String(limitS) } });

// The loudest level (dBFS) the page's return meter showed from now for `ms`.
async function loudestBack(page, ms) {
  await page.evaluate(() => { document.querySelector('[data-testid=mic-test-level]').dataset.maxDb = '-120'; });
  await sleep(ms);
  return Number(await page.getAttribute('[data-testid=mic-test-level]', 'data-max-db'));
}

describe('Test microphone, in Chromium', () => {
  describe('speech', () => {
    const env = serverAndBrowser({ serverOptions: serverOptions(8), audioFile: speechFile });

    it('hears itself back within a second; nothing recorded, no friend told; ends by itself at the limit', async (t) => {
      const { server, browser } = env;
      const alice = await loggedInPage(browser, server, uniqueName('alice'));
      const bob = new Client(server.url);
      await bob.register(uniqueName('bob'));
      await makeFriends(alice.client, bob);
      const bobSocket = bob.openPresence();
      await bobSocket.ready;
      const page = alice.page;
      // From the click to the first packet of its audio coming back, measured in the page.
      await page.evaluate(() => {
        document.querySelector('[data-testid=mic-test]').addEventListener('click', () => {
          const t0 = performance.now();
          const poll = async () => {
            const s = await window.fc25ReceiveStats?.();
            if (s?.packetsReceived > 0) window.__backMs = performance.now() - t0;
            else setTimeout(poll, 10);
          };
          poll();
        }, { capture: true });
      });
      const pressed = Date.now();
      await page.click('[data-testid=mic-test]');
      await page.waitForSelector('[data-testid=mic-test-panel]:not([hidden])', { timeout: 3000 });
      await page.waitForFunction(() => window.__backMs !== undefined, null, { timeout: 3000 });
      const backMs = await page.evaluate(() => window.__backMs);
      t.diagnostic(`audio back ${backMs.toFixed(0)} ms after pressing Test microphone`);
      assert.ok(backMs < 1000, `audio back after ${backMs.toFixed(0)} ms`);
      // And it is the voice: loud, as spoken.
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=mic-test-level]').dataset.maxDb) > -40,
        null, { timeout: 3000 });
      assert.ok(await page.isHidden('[data-testid=go-live]'), 'no going live during a test');
      // The page says the user is not live, and names the meter of what comes back.
      assert.equal(await page.textContent('[data-testid=live-state]'), 'Not live: testing the microphone');
      assert.ok(await page.isVisible('label[for=mic-test-level]'), 'the meter has its visible name');
      await sleep(1500);
      const seen = bobSocket.messages.filter((m) => m.type === 'streaming_status');
      assert.deepEqual(seen, [], 'a friend hears nothing of a test');
      assert.equal(query(server.dbPath, 'SELECT count(*) AS n FROM stream_sessions')[0].n, 0, 'no session');
      assert.deepEqual(fs.readdirSync(path.join(server.dataDir, 'streamed_audios')).filter((f) => f.endsWith('.wav')), [],
        'no file');
      // The limit (8 s here) ends it, and the page says so and lets the microphone go.
      await page.waitForSelector('[data-testid=mic-test-panel]', { state: 'hidden', timeout: 10000 });
      assert.equal(await page.textContent('[data-testid=live-error]'), 'The microphone test ends after a minute.');
      assert.ok(await page.isVisible('[data-testid=go-live]'));
      assert.equal(await page.textContent('[data-testid=live-state]'), 'Offline');
      assert.ok(await page.isHidden('label[for=mic-test-level]'), 'the name goes with the meter');
      assert.ok(Date.now() - pressed >= 8000);
      assert.match(server.logs(), /mic test ended user=\S+ test=-\d+ reason=time_limit/);
      assert.equal((await (await fetch(server.url + '/api/health')).json()).media_pipelines, 0, 'nothing left open');
      bobSocket.close();
      await alice.ctx.close();
    });
  });

  describe('noise', () => {
    const env = serverAndBrowser({ serverOptions: serverOptions(60), audioFile: noiseFile });

    it('noise removal off and on while listening: the noise comes back, then goes; the meter says loud', async (t) => {
      const { server, browser } = env;
      const alice = await loggedInPage(browser, server, uniqueName('alice'));
      const page = alice.page;
      await page.click('[data-testid=mic-test]');
      await page.waitForSelector('[data-testid=mic-test-panel]:not([hidden])', { timeout: 3000 });
      await page.waitForFunction(() => document.querySelector('[data-testid=mic-test-level]').dataset.db !== undefined,
        null, { timeout: 3000 });
      await page.waitForSelector('[data-testid=noise-meter]:not([hidden])', { timeout: 3000 });
      await sleep(1500);  // past the model's first second
      // The word is taken from the last two seconds, so it may still say what the stream's first moments were.
      await page.waitForFunction(
        () => /^(loud|moderate)$/.test(document.querySelector('[data-testid=noise-background]').textContent),
        null, { timeout: 3000 }).catch(() => {});
      assert.match(await page.textContent('[data-testid=noise-background]'), /^(loud|moderate)$/);
      const on = await loudestBack(page, 2000);
      await page.click('[data-testid=mic-test-ab]');
      assert.equal(await page.textContent('[data-testid=mic-test-ab]'), 'Noise removal: off');
      await sleep(300);
      const off = await loudestBack(page, 2000);
      await page.click('[data-testid=mic-test-ab]');
      await sleep(300);
      const onAgain = await loudestBack(page, 2000);
      t.diagnostic(`loudest back: on ${on} dBFS, off ${off} dBFS, on again ${onAgain} dBFS`);
      assert.ok(off > -36, `off: the noise comes back as loud as it went in (-30 dBFS RMS), not ${off}`);
      assert.ok(off - on > 15, `off brings the noise back (on ${on}, off ${off})`);
      assert.ok(off - onAgain > 15, `on takes it away again (off ${off}, on ${onAgain})`);
      await page.click('[data-testid=mic-test-stop]');
      await page.waitForSelector('[data-testid=mic-test-panel]', { state: 'hidden' });
      assert.equal(await page.textContent('[data-testid=live-error]'), '');
      assert.ok(await page.isHidden('[data-testid=noise-meter]'));
      await alice.ctx.close();
    });
  });
});
