// FC25_MEDIA_ADDRESS: a node behind a 1:1 NAT announces its public address in its WebRTC candidates. Here the
// "public" address is the test namespace's other interface (10.203.0.2): every host candidate the page is given
// names it, and the audio connects through it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { goLive, loggedInPage, serverAndBrowser } from '../support/browser.mjs';
import { uniqueName } from '../support/client.mjs';

const publicAddress = '10.203.0.2';

describe('announcing WebRTC candidates at FC25_MEDIA_ADDRESS', () => {
  const started = serverAndBrowser({ serverOptions: { env: { FC25_MEDIA_ADDRESS: publicAddress, FC25_DENOISER: 'passthrough' } } });

  it('every host candidate the page receives names the configured address, and the audio connects', async () => {
    const { server, browser } = started;
    // The page's RTCPeerConnection: the candidates the server trickles to it, as the page hands them over.
    const { page } = await loggedInPage(browser, server, uniqueName('nat'), {
      initScript: () => {
        window.givenCandidates = [];
        const add = RTCPeerConnection.prototype.addIceCandidate;
        RTCPeerConnection.prototype.addIceCandidate = function (c, ...rest) {
          if (c && c.candidate) window.givenCandidates.push(c.candidate);
          return add.call(this, c, ...rest);
        };
      },
    });
    await goLive(page);
    const given = await page.evaluate(() => window.givenCandidates);
    const hosts = given.filter((c) => / typ host/.test(c));
    assert.ok(hosts.length > 0, `host candidates were trickled: ${JSON.stringify(given)}`);
    for (const c of hosts) assert.equal(c.split(' ')[4], publicAddress, c);
    assert.match(server.logs(), /media_address=10\.203\.0\.2/);
    await page.click('[data-testid=stop]');
  });
});
