// Knowing when friends go live, in Chromium: a toast on every fc25 page, a browser notification once the user turned
// them on (the permission asked on that click, never on load), per-friend mute, and the friend's page saying for how
// long they have been live.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, loggedInPage } from '../support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Records what the page asks of the Notification API, and still lets it through to the browser.
function watchNotifications() {
  window.__permissionRequests = 0;
  window.__notifications = [];
  const Real = window.Notification;
  class Watched extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: options?.body, tag: options?.tag });
    }
  }
  Watched.requestPermission = (...args) => { window.__permissionRequests++; return Real.requestPermission(...args); };
  window.Notification = Watched;
}

describe('friends going live, in Chromium', () => {
  let server, browser;
  before(async () => {
    server = await startServer({ env: { FC25_MEDIA_TIMEOUT_MS: '120000' } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  // bob on his dashboard, friends with alice and dave (both made through the API, ready to go live).
  async function bobAndFriends({ grant }) {
    const bobName = uniqueName('bob');
    const bob = await loggedInPage(browser, server, bobName, { initScript: watchNotifications });
    if (grant) await bob.ctx.grantPermissions(['notifications'], { origin: server.url });
    const friends = {};
    for (const who of ['alice', 'dave']) {
      const c = new Client(server.url);
      await c.register(uniqueName(who));
      await makeFriends(c, bob.client);
      friends[who] = c;
    }
    await bob.page.reload();
    for (const c of Object.values(friends)) await bob.page.locator(`[data-testid="friend-${c.username}"]`).waitFor();
    return { bob, ...friends };
  }
  const goLive = async (c) => {
    const r = await c.post('/api/stream/start', { client_id: uniqueName('tab') });
    assert.equal(r.status, 201, r.text);
    return r.body.session_id;
  };

  it('a toast and a notification when a friend goes live; a muted friend raises neither', async () => {
    const { bob, alice, dave } = await bobAndFriends({ grant: true });
    const page = bob.page;
    assert.equal(await page.evaluate(() => window.__permissionRequests), 0, 'no permission asked on load');
    await page.click('[data-testid=notify]');
    await page.waitForSelector('[data-testid=notify][data-state=on]');
    assert.equal(await page.textContent('[data-testid=notify]'), 'Notifications: on');
    await page.click(`[data-testid="mute-${dave.username}"]`);
    assert.equal(await page.getAttribute(`[data-testid="mute-${dave.username}"]`, 'aria-pressed'), 'true');

    await goLive(dave);
    await goLive(alice);
    const toast = page.locator(`[data-testid="toast-${alice.username}"]`);
    await toast.waitFor({ timeout: 2000 });
    assert.equal(await toast.locator('a').textContent(), `${alice.username} is live — listen`);
    await page.waitForFunction(() => window.__notifications.length > 0, null, { timeout: 2000 });
    await sleep(500);  // dave's event came first: had it raised anything, it would be here by now
    const shown = await page.evaluate(() => window.__notifications);
    assert.deepEqual(shown.map((n) => n.title), [`${alice.username} is live`], 'one notification, none for muted dave');
    assert.equal(await page.locator(`[data-testid="toast-${dave.username}"]`).count(), 0, 'no toast for muted dave');
    // The mute holds across a reload (kept in this browser), and a reload announces no one already live.
    await page.reload();
    await page.locator(`[data-testid="friend-${alice.username}"][data-live=true]`).waitFor();
    assert.equal(await page.getAttribute(`[data-testid="mute-${dave.username}"]`, 'aria-pressed'), 'true');
    await sleep(500);
    assert.equal(await page.locator('.toast').count(), 0, 'friends already live when the page loads raise no toast');
    assert.equal(await page.textContent('[data-testid=notify]'), 'Notifications: on');

    // The toast leads to the friend's page: "Live for 00:0x" and a Listen button.
    await alice.post('/api/stream/stop', {});
    await goLive(alice);
    await toast.waitFor({ timeout: 2000 });
    await page.waitForFunction((n) => window.__notifications.length === n, 1, { timeout: 2000 });
    await toast.locator('a').click();
    await page.waitForURL(`**/u/${alice.username}`);
    await page.waitForSelector('[data-testid=friend-timer]:not([hidden])');
    const state = await page.textContent('[data-testid=friend-state]');
    const timer = await page.textContent('[data-testid=friend-timer]');
    assert.equal(`${state} ${timer}`.replace(/\d/g, 'n'), 'Live for nn:nn');
    assert.ok(await page.isVisible('[data-testid=listen]'), 'Listen is one click away');

    // On alice's page, another friend going live still shows a toast.
    await page.goto(`${server.url}/`);
    await page.click(`[data-testid="mute-${dave.username}"]`);   // unmute
    assert.equal(await page.getAttribute(`[data-testid="mute-${dave.username}"]`, 'aria-pressed'), 'false');
    await page.goto(`${server.url}/u/${alice.username}`);
    await page.waitForSelector('[data-testid=friend-timer]:not([hidden])');
    await dave.post('/api/stream/stop', {});
    await goLive(dave);
    await page.locator(`[data-testid="toast-${dave.username}"]`).waitFor({ timeout: 2000 });
    for (const c of [alice, dave]) await c.post('/api/stream/stop', {});
  });

  it('on a phone, a toast hides nothing for good: scrolled to the end, the page ends above it', async () => {
    const { bob, alice, dave } = await bobAndFriends({ grant: false });
    const page = bob.page;
    await page.setViewportSize({ width: 375, height: 740 });
    await goLive(alice);
    await goLive(dave);
    for (const c of [alice, dave]) await page.locator(`[data-testid="toast-${c.username}"]`).waitFor({ timeout: 2000 });
    // Scrolled to the end a moment later, as someone would who saw the toasts come up.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const { mainBottom, toastsTop } = await page.evaluate(() => ({
      mainBottom: document.querySelector('main').getBoundingClientRect().bottom,
      toastsTop: document.querySelector('[data-testid=toasts]').getBoundingClientRect().top,
    }));
    assert.ok(mainBottom <= toastsTop, `the page ends at ${mainBottom} px, the toasts start at ${toastsTop} px`);
    // Dismissed, they leave no gap behind.
    for (const c of [alice, dave]) await page.click(`[data-testid="toast-${c.username}"] button`);
    await page.waitForFunction(() => getComputedStyle(document.body).paddingBottom === '0px', null, { timeout: 1000 });
    for (const c of [alice, dave]) await c.post('/api/stream/stop', {});
  });

  it('the permission is asked on the click that turns notifications on, not before', async () => {
    const { bob, alice } = await bobAndFriends({ grant: false });
    const page = bob.page;
    await sleep(300);
    assert.equal(await page.evaluate(() => window.__permissionRequests), 0, 'nothing asked on load');
    await page.click('[data-testid=notify]');
    await page.waitForFunction(() => window.__permissionRequests === 1, null, { timeout: 2000 });
    // Whatever the browser answered, the page says where it stands and friends going live still show in it.
    const st = await page.getAttribute('[data-testid=notify]', 'data-state');
    assert.ok(['on', 'off', 'blocked'].includes(st), st);
    await goLive(alice);
    await page.locator(`[data-testid="toast-${alice.username}"]`).waitFor({ timeout: 2000 });
    await alice.post('/api/stream/stop', {});
  });
});
