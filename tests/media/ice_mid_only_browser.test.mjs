// A client that knows candidates' m-lines by sdpMid alone (as some WebRTC stacks do): Chromium pages whose
// candidates go out with sdpMid only, and which place the server's candidates by sdpMid only, dropping any without
// one. Alice goes live and Bob listens; every server candidate is placed, and the audio flows both ways.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { readWav, rmsDb } from '../support/audio.mjs';
import { goLive, loggedInPage, serverAndBrowser } from '../support/browser.mjs';
import { makeFriends, uniqueName } from '../support/client.mjs';
import { sharedDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs in the page before its scripts: outgoing ice_candidate messages lose sdpMLineIndex; addIceCandidate places
// a candidate by sdpMid only and drops one without it (counting both).
function midOnly() {
  window.__ice = { sent: 0, sentWithIndex: 0, sentWithMid: 0, placed: 0, dropped: 0 };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    let m = null;
    try { m = JSON.parse(data); } catch { /* not JSON */ }
    if (m && m.type === 'ice_candidate') {
      delete m.sdpMLineIndex;
      window.__ice.sent++;
      if (typeof m.sdpMid === 'string') window.__ice.sentWithMid++;
      if ('sdpMLineIndex' in m) window.__ice.sentWithIndex++;
      data = JSON.stringify(m);
    }
    return send.call(this, data);
  };
  const add = RTCPeerConnection.prototype.addIceCandidate;
  RTCPeerConnection.prototype.addIceCandidate = function (c) {
    if (!c || typeof c.sdpMid !== 'string' || !c.sdpMid) {
      window.__ice.dropped++;
      return Promise.resolve();
    }
    window.__ice.placed++;
    return add.call(this, { candidate: c.candidate, sdpMid: c.sdpMid });
  };
}

describe('a client that places ICE candidates by sdpMid only', () => {
  const started = serverAndBrowser({ serverOptions: { env: { FC25_MODEL_DIR: modelDir } }, audioFile: speech });
  let server, browser;
  before(() => ({ server, browser } = started));

  it('goes live and listens: every server candidate is placed, the stream is recorded and heard', async (t) => {
    const alice = await loggedInPage(browser, server, uniqueName('alice'), { initScript: midOnly });
    await goLive(alice.page);

    const bob = await loggedInPage(browser, server, uniqueName('bob'), { initScript: midOnly });
    await makeFriends(alice.client, bob.client);
    await bob.page.goto(`${server.url}/u/${alice.client.username}`);
    await bob.page.waitForSelector('[data-testid=friend-timer]:not([hidden])');
    await bob.page.click('[data-testid=listen]');
    await bob.page.waitForFunction(() => Number(document.querySelector('[data-testid=listen-level]').dataset.maxDb) > -50,
      null, { timeout: 5000 });
    await sleep(2500);

    for (const [who, p] of [['alice', alice.page], ['bob', bob.page]]) {
      const ice = await p.evaluate(() => window.__ice);
      t.diagnostic(`${who}: ${JSON.stringify(ice)}`);
      assert.ok(ice.sent >= 1, `${who}'s page sent candidates`);
      assert.equal(ice.sentWithMid, ice.sent, `${who}'s candidates all went out with sdpMid`);
      assert.equal(ice.sentWithIndex, 0, `${who}'s candidates went out without sdpMLineIndex`);
      assert.ok(ice.placed >= 1, `${who}'s page placed server candidates by sdpMid`);
      assert.equal(ice.dropped, 0, `no server candidate reached ${who}'s page without sdpMid`);
    }

    await alice.page.click('[data-testid=stop]');
    await alice.page.waitForSelector('[data-testid=go-live]:not([hidden])');
    const end = Date.now() + 5000;
    let row;
    while (!(row = query(server.dbPath, `SELECT r.* FROM stream_recordings r JOIN stream_sessions s ON s.id = r.session_id
      JOIN users u ON u.id = s.user_id WHERE u.username = '${alice.client.username}'`)[0]) && Date.now() < end) await sleep(100);
    assert.ok(row, 'the stream was recorded');
    const wav = readWav(path.join(server.dataDir, row.path));
    assert.ok(fs.statSync(path.join(server.dataDir, row.path)).size > 0);
    const db = rmsDb(wav.samples, 48000, 1);
    assert.ok(wav.samples.length / 48000 > 3, `recording ${(wav.samples.length / 48000).toFixed(1)} s`);
    assert.ok(db > -45, `the recording holds the speech (${db.toFixed(1)} dBFS)`);
  });
});
