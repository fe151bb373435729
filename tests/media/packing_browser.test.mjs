// Packet length, both ways: by default (auto, on a server with streams to spare) alice's Chromium, asked by the
// server's answer, sends 10 ms packets and bob hears her through the denoiser in 10 ms packets from the low-delay
// encoder; with FC25_PACKET_MS=20 and
// FC25_LISTENER_OPUS=voice, 20 ms packets both ways. Either way little is concealed and the recording holds the
// whole stream.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { goLive, loggedInPage, serverAndBrowser } from '../support/browser.mjs';
import { makeFriends, uniqueName } from '../support/client.mjs';
import { sharedDir } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';
import { readWav } from '../support/audio.mjs';

const speech = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Keeps the page's peer connections, for its own send statistics.
const KEEP_PCS = `(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native { constructor(...a) { super(...a); window.__pcs.push(this); } };
})()`;

for (const { ms, shown, opus, env } of [
  { ms: 10, shown: 'auto', opus: 'lowdelay', env: {} },
  { ms: 20, shown: '20', opus: 'voice', env: { FC25_PACKET_MS: '20', FC25_LISTENER_OPUS: 'voice' } },
]) describe(`${ms} ms packets both ways${Object.keys(env).length ? ' when asked' : ', the default'}`, () => {
  const started = serverAndBrowser({ serverOptions: { env: { FC25_MODEL_DIR: modelDir, ...env } }, audioFile: speech });
  let server, browser;
  before(() => ({ server, browser } = started));

  const user = async (name) => ({ name, ...await loggedInPage(browser, server, name, { initScript: KEEP_PCS }) });
  const sent = (page) => page.evaluate(async () => {
    for (const pc of window.__pcs) {
      for (const s of (await pc.getStats()).values()) if (s.type === 'outbound-rtp' && s.kind === 'audio') return s.packetsSent;
    }
    return 0;
  });

  it(`the page is asked for ${ms} ms packets and sends them; a friend hears ${ms} ms packets; the recording is whole`, async (t) => {
    assert.ok(server.logs().includes(`packet_ms=${shown} listener_opus=${opus}`), 'the start-up line says so');
    const alice = await user(uniqueName('alice'));
    const bob = await user(uniqueName('bob'));
    await makeFriends(alice.client, bob.client);

    const wentLive = Date.now();
    await goLive(alice.page);
    await server.waitForLog(new RegExp(`media connected session=\\d+ packets=${ms} ms`));

    await bob.page.goto(`${server.url}/u/${alice.name}`);
    await bob.page.waitForSelector('[data-testid=friend-timer]:not([hidden])');
    await bob.page.click('[data-testid=listen]');
    await bob.page.waitForFunction(() => Number(document.querySelector('[data-testid=listen-level]').dataset.maxDb) > -50,
      null, { timeout: 3000 });

    const [a1, b1] = [await sent(alice.page), await bob.page.evaluate(() => window.fc25ReceiveStats())];
    const t1 = Date.now();
    await sleep(2000);
    const [a2, b2] = [await sent(alice.page), await bob.page.evaluate(() => window.fc25ReceiveStats())];
    const seconds = (Date.now() - t1) / 1000;
    const alicePerS = (a2 - a1) / seconds, bobPerS = (b2.packetsReceived - b1.packetsReceived) / seconds;
    const concealed = (b2.concealedSamples - b1.concealedSamples) / Math.max(1, b2.totalSamplesReceived - b1.totalSamplesReceived);
    t.diagnostic(`alice sent ${alicePerS.toFixed(0)} packets/s, bob received ${bobPerS.toFixed(0)}/s, ` +
      `${(100 * concealed).toFixed(2)} % concealed, lost ${b2.packetsLost}`);
    const perS = 1000 / ms;
    assert.ok(Math.abs(alicePerS - perS) < 0.15 * perS, `alice sends ${ms} ms packets (${alicePerS.toFixed(0)}/s)`);
    assert.ok(Math.abs(bobPerS - perS) < 0.15 * perS, `bob receives ${ms} ms packets (${bobPerS.toFixed(0)}/s)`);
    assert.ok(concealed < 0.02, `little concealment (${(100 * concealed).toFixed(2)} %)`);

    await alice.page.click('[data-testid=stop]');
    const live = (Date.now() - wentLive) / 1000;
    await bob.page.waitForSelector('[data-testid=listen-note]:has-text("ended")', { timeout: 3000 });
    let rec;
    const end = Date.now() + 5000;
    while (!(rec = query(server.dbPath, `SELECT r.* FROM stream_recordings r JOIN users u ON u.id = r.user_id WHERE u.username = '${alice.name}'`)[0]) && Date.now() < end) await sleep(100);
    assert.ok(rec, 'the recording is listed');
    const wav = readWav(path.join(server.dataDir, rec.path));
    const held = wav.samples.length / wav.rate;
    t.diagnostic(`recording ${held.toFixed(2)} s of a stream live ${live.toFixed(2)} s`);
    // From the first audio to Stop: the whole stream but its connection set-up.
    assert.ok(held > live - 2 && held <= live + 0.1, `the recording holds ${held.toFixed(2)} s of ${live.toFixed(2)} s`);
    assert.ok(Math.abs(rec.duration_ms / 1000 - held) < 0.05, 'its row says as long as the file');
  });
});
