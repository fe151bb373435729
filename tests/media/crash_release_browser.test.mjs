// The server crashes while the dashboard is live and comes back on the same port and data: when the page's presence
// socket reconnects, the snapshot says "not live" (the stream was ended server_restart), and the page releases the
// microphone and closes its peer connection at once — it does not keep capturing until WebRTC gives up.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { goLive, launchBrowser, loggedInPage, requireTestNetwork } from '../support/browser.mjs';
import { uniqueName } from '../support/client.mjs';
import { sharedDir, startServer } from '../support/server.mjs';

const speechFile = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const env = { FC25_DENOISER: 'passthrough' };

describe('the dashboard after a server crash', () => {
  let server, restarted, browser;
  before(async () => {
    requireTestNetwork();
    server = await startServer({ env });
    browser = await launchBrowser({ audioFile: speechFile });
  });
  after(async () => {
    await browser?.close();
    await restarted?.stop();
    await server?.stop();
  });

  it('releases the microphone and closes the connection as soon as the server says "not live"', async (t) => {
    const name = uniqueName('alice');
    // Keep hold of what the page captures and connects, to see whether it lets them go.
    const { ctx, page } = await loggedInPage(browser, server, name, { initScript: () => {
      window.__mics = [];
      window.__pcs = [];
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async (c) => { const s = await gum(c); window.__mics.push(s); return s; };
      const PC = window.RTCPeerConnection;
      window.RTCPeerConnection = function (...a) { const pc = new PC(...a); window.__pcs.push(pc); return pc; };
      window.RTCPeerConnection.prototype = PC.prototype;
      window.__released = () => window.__mics.length > 0 && window.__pcs.length > 0 &&
        window.__mics.every((s) => s.getTracks().every((tr) => tr.readyState === 'ended')) &&
        window.__pcs.every((pc) => pc.signalingState === 'closed');
    } });
    await goLive(page);
    assert.equal(await page.evaluate(() => window.__released()), false, 'live: the microphone is held');

    await server.kill();  // SIGKILL: no stream end, no goodbye to the page
    await page.waitForFunction(() => document.getElementById('connection').textContent !== '', null, { timeout: 5000 });
    restarted = await startServer({ env, dataDir: server.dataDir, args: ['--port', String(server.port)] });
    const restartedAt = Date.now();
    // The page's socket comes back (it retries with backoff) and gets its snapshot.
    await page.waitForFunction(() => document.getElementById('connection').textContent === '', null, { timeout: 20000 });
    const upAt = Date.now();
    let releasedAt;
    try {
      await page.waitForFunction(() => window.__released(), null, { timeout: 2000, polling: 50 });
      releasedAt = Date.now();
    } catch {
      const held = await page.evaluate(() => ({
        tracks: window.__mics.flatMap((s) => s.getTracks().map((tr) => tr.readyState)),
        pcs: window.__pcs.map((pc) => `${pc.signalingState}/${pc.connectionState}`),
        live: document.getElementById('live-state').textContent,
      }));
      assert.fail(`2 s after the socket came back the page still holds: ${JSON.stringify(held)}`);
    }
    t.diagnostic(`socket back ${upAt - restartedAt} ms after the restart; mic released and connection closed ` +
      `${releasedAt - upAt} ms after that`);
    assert.equal(await page.locator('#live-state').textContent(), 'Offline');
    assert.equal(await page.evaluate(() => document.body.dataset.mediaState), undefined);
    await ctx.close();
  });
});
