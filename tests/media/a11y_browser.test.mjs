// Every page and state a user meets, checked in Chromium: axe-core finds no serious or critical accessibility
// violation; at 390×844 (a phone) nothing scrolls sideways and every button is at least 44 px high; the dashboard's
// controls work from the keyboard. Screenshots of a failing state are kept in the test's artifacts directory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';

import { launchBrowser, loggedInPage, requireTestNetwork } from '../support/browser.mjs';
import { makeFriends, uniqueName } from '../support/client.mjs';
import { addRecordings } from '../support/recordings.mjs';
import { sharedDir, startServer, tempDir } from '../support/server.mjs';

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const modelDir = process.env.FC25_MODEL_DIR || path.join(sharedDir, 'models/DeepFilterNet3');
const speechFile = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const artifacts = process.env.FC25_TEST_ARTIFACTS || tempDir('fc25-a11y-');

// Problems of the page as it is now: axe's serious and critical violations, and at phone size, sideways scrolling
// and buttons under 44 px.
async function problems(page, state) {
  await page.evaluate(axeSource);  // evaluated by the test, so the pages' CSP does not apply
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const found = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${state}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  const phone = await page.evaluate(() => {
    const out = [];
    const wide = document.documentElement.scrollWidth;
    if (wide > window.innerWidth) out.push(`scrolls sideways: ${wide} px wide in ${window.innerWidth}`);
    for (const b of document.querySelectorAll('button, a.button-link, input[type=submit]')) {
      const r = b.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;  // not shown
      if (r.height < 44) out.push(`button "${b.textContent.trim() || b.getAttribute('aria-label')}" is ${r.height.toFixed(0)} px high`);
    }
    return out;
  });
  found.push(...phone.map((p) => `${state} at 390×844: ${p}`));
  if (found.length) {
    await page.screenshot({ path: path.join(artifacts, `${state.replace(/\W+/g, '-')}.png`), fullPage: true });
  }
  await page.setViewportSize(size);
  return found;
}

describe('accessibility and small screens, in Chromium', () => {
  let server, browser;
  before(async () => {
    requireTestNetwork();
    server = await startServer({ env: { FC25_MODEL_DIR: modelDir, FC25_RECORD_RAW: '1' } });
    browser = await launchBrowser({ audioFile: speechFile });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('every page and state: no serious or critical violation, fits a phone, buttons big enough', async (t) => {
    const found = [];
    const anon = await browser.newContext();
    const page = await anon.newPage();
    // The checks can fail: a nameless, small button, and a page too wide, are reported.
    await page.goto(server.url + '/login');
    await page.evaluate(() => {
      const b = document.createElement('button');
      b.style.cssText = 'min-height: 0; height: 20px; width: 900px';
      document.body.append(b);
    });
    const planted = await problems(page, 'planted faults');
    assert.ok(planted.some((p) => /button-name \(critical\)/.test(p)), planted.join('\n'));
    assert.ok(planted.some((p) => /scrolls sideways/.test(p)), planted.join('\n'));
    assert.ok(planted.some((p) => /is 20 px high/.test(p)), planted.join('\n'));
    for (const p of ['/login', '/register']) {
      await page.goto(server.url + p);
      await page.waitForSelector('[data-testid=submit]');
      found.push(...await problems(page, `logged out ${p}`));
    }
    await anon.close();

    const alice = await loggedInPage(browser, server, uniqueName('alice'));
    const bob = await loggedInPage(browser, server, uniqueName('bob'));
    const carol = await loggedInPage(browser, server, uniqueName('carol'));
    await makeFriends(alice.client, bob.client);
    await carol.client.post('/api/friends/requests', { username: alice.client.username });
    addRecordings(server, alice.client.username, { raw: true, count: 2 });
    await alice.page.reload();
    await alice.page.waitForSelector('li.recording');
    found.push(...await problems(alice.page, 'dashboard offline, with friends, a request and recordings'));

    await alice.page.click('[data-testid=mic-test]');
    await alice.page.waitForSelector('[data-testid=noise-meter]:not([hidden])', { timeout: 5000 });
    found.push(...await problems(alice.page, 'dashboard testing the microphone'));
    await alice.page.click('[data-testid=mic-test-stop]');

    await alice.page.click('[data-testid=go-live]');
    await alice.page.waitForSelector('[data-testid=noise-meter]:not([hidden])', { timeout: 5000 });
    found.push(...await problems(alice.page, 'dashboard live'));

    await bob.page.goto(`${server.url}/u/${alice.client.username}`);
    await bob.page.click('[data-testid=listen]');
    await bob.page.waitForFunction(() => document.body.dataset.listenState === 'connected', null, { timeout: 10000 });
    found.push(...await problems(bob.page, 'friend page listening'));
    await alice.page.click('[data-testid=stop]');
    await bob.page.waitForSelector('li.recording', { timeout: 5000 });
    found.push(...await problems(bob.page, 'friend page with recordings'));

    for (const f of found) t.diagnostic(f);
    assert.deepEqual(found, [], `screenshots in ${artifacts}`);
    for (const u of [alice, bob, carol]) await u.ctx.close();
  });

  it('the dashboard from the keyboard alone: choose a strength, go live, stop', async () => {
    const dana = await loggedInPage(browser, server, uniqueName('dana'));
    const page = dana.page;
    const tabTo = async (testid) => {
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate((id) => document.activeElement?.dataset.testid === id, testid)) return;
      }
      throw new Error(`Tab never reached ${testid}`);
    };
    await tabTo('strength-full');
    await page.keyboard.press('ArrowLeft');   // radio group: Full -> Balanced
    assert.equal(await page.evaluate(() => document.querySelector('input[name=strength]:checked').value), 'balanced');
    await tabTo('go-live');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.body.dataset.mediaState === 'connected', null, { timeout: 10000 });
    const [row] = await dana.client.get('/api/stream/status').then((r) => [r.body]);
    assert.equal(row.is_streaming, true);
    await tabTo('stop');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid=go-live]:not([hidden])');
    await dana.ctx.close();
  });
});
