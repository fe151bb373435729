// Recordings on the dashboard and a friend's page, in Chromium: rename, clean/original switch, download, older pages,
// and the line on the space they take.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, loggedInPage } from '../support/browser.mjs';
import { makeFriends, uniqueName } from '../support/client.mjs';
import { addRecordings } from '../support/recordings.mjs';
import { startServer } from '../support/server.mjs';

describe('recordings in Chromium', () => {
  let server, browser;
  before(async () => {
    server = await startServer({ env: { FC25_QUOTA_MB: '500' } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('rename, switch to the original and back where it was, download; a friend sees the title', async () => {
    const alice = await loggedInPage(browser, server, uniqueName('alice'));
    const [id] = addRecordings(server, alice.client.username, { raw: true, seconds: 2 });
    const page = alice.page;
    await page.reload();
    const item = page.locator(`[data-testid=recording-${id}]`);
    await item.waitFor();
    assert.match(await page.textContent('[data-testid=usage]'), /^Your recordings use \d+ KB of 500\.0 MB\.$/);

    await page.click(`[data-testid=rename-recording-${id}]`);
    await page.fill(`[data-testid=title-input-${id}]`, 'Late night set');
    await page.press(`[data-testid=title-input-${id}]`, 'Enter');
    await page.waitForSelector(`[data-testid=recording-title-${id}]:text-is("Late night set")`);
    await page.reload();
    await page.waitForSelector(`[data-testid=recording-title-${id}]:text-is("Late night set")`);
    // A title too long is refused with the server's reason, and the old one stays.
    await page.click(`[data-testid=rename-recording-${id}]`);
    await page.evaluate((i) => { document.querySelector(`[data-testid=title-input-${i}]`).maxLength = 1000; }, id);
    await page.fill(`[data-testid=title-input-${id}]`, 'x'.repeat(120));
    await page.click(`[data-testid=title-save-${id}]`);
    await page.waitForSelector(`[data-testid=recording-${id}] form.rename [role=alert]:has-text("at most 100 characters")`);
    await page.click(`[data-testid=title-cancel-${id}]`);
    assert.equal(await page.textContent(`[data-testid=recording-title-${id}]`), 'Late night set');

    // Clean / original: the player keeps its place.
    const audio = item.locator('audio');
    await audio.evaluate((a) => new Promise((resolve) => {
      if (a.readyState >= 1) resolve(); else a.addEventListener('loadedmetadata', resolve, { once: true });
    }));
    await audio.evaluate((a) => { a.currentTime = 1.25; });
    await page.click(`[data-testid=ab-original-${id}]`);
    await page.waitForFunction((i) => {
      const a = document.querySelector(`[data-testid=recording-${i}] audio`);
      return a.dataset.version === 'original' && a.readyState >= 1 && Math.abs(a.currentTime - 1.25) < 0.05;
    }, id, { timeout: 3000 });
    assert.match(await audio.getAttribute('src'), new RegExp(`/media/recordings/${id}_raw\\.wav$`));
    assert.equal(await page.getAttribute(`[data-testid=ab-original-${id}]`, 'aria-pressed'), 'true');
    await page.click(`[data-testid=ab-clean-${id}]`);
    await page.waitForFunction((i) => document.querySelector(`[data-testid=recording-${i}] audio`).dataset.version === 'clean', id);
    assert.match(await audio.getAttribute('src'), new RegExp(`/media/recordings/${id}\\.wav$`));

    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=download-recording-${id}]`)]);
    assert.match(download.suggestedFilename(), new RegExp(`^fc25-${alice.client.username}-\\d{4}-\\d\\d-\\d\\d-\\d{4}-Late-night-set\\.wav$`));

    // A friend: the title and Download, no Rename or Delete, no usage line.
    const bob = await loggedInPage(browser, server, uniqueName('bob'));
    await makeFriends(alice.client, bob.client);
    await bob.page.goto(`${server.url}/u/${alice.client.username}`);
    await bob.page.waitForSelector(`[data-testid=recording-title-${id}]:text-is("Late night set")`);
    assert.equal(await bob.page.locator(`[data-testid=rename-recording-${id}]`).count(), 0);
    assert.equal(await bob.page.locator(`[data-testid=delete-recording-${id}]`).count(), 0);
    assert.ok(await bob.page.isVisible(`[data-testid=download-recording-${id}]`));

    // The longest title, in one word: it wraps inside the page, which gets no wider than the window.
    await page.click(`[data-testid=rename-recording-${id}]`);
    await page.fill(`[data-testid=title-input-${id}]`, 'W'.repeat(100));
    await page.press(`[data-testid=title-input-${id}]`, 'Enter');
    await page.waitForSelector(`[data-testid=recording-title-${id}]:text-is("${'W'.repeat(100)}")`);
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= inner, `the page is ${scroll} px wide in a window of ${inner}`);
    await alice.ctx.close();
    await bob.ctx.close();
  });

  // A recording of 2.6 s is listed as 00:02, as the player counts it; a delete the server refuses says why.
  it("a recording's length as the player counts it; a refused delete is said", async () => {
    const carl = await loggedInPage(browser, server, uniqueName('carl'));
    const [id] = addRecordings(server, carl.client.username, { seconds: 2.6 });
    const page = carl.page;
    await page.reload();
    await page.waitForSelector(`[data-testid=recording-${id}]`);
    assert.match(await page.textContent(`[data-testid=recording-${id}]`), /00:02 · /);
    await page.route(`**/api/recordings/${id}`, (route) => (route.request().method() === 'DELETE'
      ? route.fulfill({ status: 503, contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'database_unavailable', message: 'the database is not reachable' } }) })
      : route.continue()));
    page.once('dialog', (d) => d.accept());
    await page.click(`[data-testid=delete-recording-${id}]`);
    await page.waitForSelector(`[data-testid=recording-${id}] [role=alert]:text("Could not delete it: the database is not reachable")`,
      { timeout: 3000 });
    await carl.ctx.close();
  });

  it('more than 100 recordings: the first 100, then Show older for the rest', async () => {
    const carol = await loggedInPage(browser, server, uniqueName('carol'));
    const ids = addRecordings(server, carol.client.username, { count: 103, files: false });
    await carol.page.reload();
    await carol.page.locator(`[data-testid=recording-${ids[102]}]`).waitFor();
    assert.equal(await carol.page.locator('li.recording').count(), 100);
    assert.equal(await carol.page.locator(`[data-testid=recording-${ids[2]}]`).count(), 0);
    await carol.page.click('[data-testid=recordings-more]');
    await carol.page.locator(`[data-testid=recording-${ids[0]}]`).waitFor();
    assert.equal(await carol.page.locator('li.recording').count(), 103);
    assert.ok(await carol.page.isHidden('[data-testid=recordings-more]'), 'nothing older: no button');
    await carol.ctx.close();
  });
});
