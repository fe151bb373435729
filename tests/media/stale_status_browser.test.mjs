// A status the page asked for just before Go live and got just after it (a slow GET /api/me) says "not live":
// it must neither end the stream the page has just started nor show the page as not live.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { goLive, loggedInPage, serverAndBrowser } from '../support/browser.mjs';
import { Client, uniqueName } from '../support/client.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('a status older than the stream', () => {
  const started = serverAndBrowser();
  let server, browser;
  before(() => ({ server, browser } = started));

  it('a poll answered after Go live leaves the new stream live and sending', async () => {
    const name = uniqueName('stale');
    const { client, page } = await loggedInPage(browser, server, name);
    // bob asks first, so alice's own request to bob makes them friends at once, and the page polls its status.
    const bob = new Client(server.url);
    const bobName = uniqueName('staleb');
    await bob.register(bobName);
    assert.equal((await bob.post('/api/friends/requests', { username: name })).status, 201);

    let held = 0;
    await page.route('**/api/me', async (route) => {
      held += 1;
      const response = await route.fetch();  // answered by the server now: not live
      await sleep(2500);                     // and handed to the page after Go live
      await route.fulfill({ response });
    });
    await page.fill('[data-testid=request-username]', bobName);
    await page.click('[data-testid=send-request]');
    await sleep(300);
    assert.equal(held, 1, 'the page polled its status');
    await goLive(page);
    await sleep(3500);  // the held answer has reached the page

    assert.equal(await page.locator('[data-testid=stop]').isVisible(), true, 'the page still shows Stop');
    assert.equal(await page.evaluate(() => document.body.dataset.mediaState), 'connected');
    assert.equal(await page.textContent('[data-testid=live-error]'), '');
    const status = await client.get(`/api/stream/status?username=${name}`);
    assert.equal(status.body.is_streaming, true, JSON.stringify(status.body));
    await page.click('[data-testid=stop]');
  });
});
