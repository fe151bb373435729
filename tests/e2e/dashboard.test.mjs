// Two people in two browsers: register, become friends, go live, reload, close — as a user would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, registerInPage } from '../support/browser.mjs';
import { Client, uniqueName } from '../support/client.mjs';
import { startServer } from '../support/server.mjs';
import { query } from '../support/sqlite.mjs';

const friendRow = (page, name) => page.locator(`[data-testid="friend-${name}"]`);

// Resolves with the milliseconds it took until the friend's row shows `live`.
async function timeUntilLive(page, name, live, timeout = 3000) {
  const t0 = performance.now();
  await page.waitForSelector(`[data-testid="friend-${name}"][data-live="${live}"]`, { timeout });
  return performance.now() - t0;
}

const register = registerInPage;

const seconds = (text) => text.split(':').reduce((acc, x) => acc * 60 + Number(x), 0);

describe('dashboard in Chromium', () => {
  let server, browser, aliceCtx, bobCtx;
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const activeCount = () => query(server.dbPath, 'SELECT count(*) AS n FROM active_streams')[0].n;
  const lastSession = () => query(server.dbPath,
    `SELECT s.* FROM stream_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = '${alice}' ORDER BY s.id DESC LIMIT 1`)[0];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    aliceCtx = await browser.newContext();
    bobCtx = await browser.newContext();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  // Runs fn with `count` new browser contexts (each with `options`), closed afterwards whatever happens.
  async function withContexts(count, options, fn) {
    const contexts = [];
    try {
      for (let i = 0; i < count; i++) contexts.push(await browser.newContext(options));
      return await fn(...contexts);
    } finally {
      for (const c of contexts) await c.close();
    }
  }

  it('alice goes live, bob sees it at once, the timer runs, reload and close end the stream', async () => {
    let alicePage = await register(aliceCtx, server.url, alice);
    const bobPage = await register(bobCtx, server.url, bob);

    // Friends through the UI.
    await alicePage.fill('[data-testid=request-username]', bob);
    await alicePage.click('[data-testid=send-request]');
    await alicePage.waitForSelector(`[data-testid="outgoing-${bob}"]`);
    await bobPage.click(`[data-testid="accept-${alice}"]`, { timeout: 3000 });
    await friendRow(bobPage, alice).waitFor({ timeout: 3000 });
    await friendRow(alicePage, bob).waitFor({ timeout: 3000 });
    assert.equal(await friendRow(bobPage, alice).getAttribute('data-live'), 'false');

    // Go live: bob sees it within 1 s; alice's timer starts at 00:00 and runs.
    const [, liveAfter] = await Promise.all([alicePage.click('[data-testid=go-live]'), timeUntilLive(bobPage, alice, true)]);
    assert.ok(liveAfter < 1000, `bob saw alice live after ${liveAfter.toFixed(0)} ms`);
    // Her row offers to listen, on her page.
    const listenLink = bobPage.locator(`[data-testid="listen-${alice}"]`);
    assert.equal(await listenLink.getAttribute('href'), `/u/${alice}`);
    const timer = alicePage.locator('[data-testid=timer]');
    await timer.waitFor();
    assert.equal(await timer.textContent(), '00:00');
    await alicePage.waitForTimeout(2100);
    const t2 = seconds(await timer.textContent());
    assert.ok(t2 >= 2, `timer read ${await timer.textContent()} after two seconds`);
    await alicePage.waitForTimeout(1100);
    assert.ok(seconds(await timer.textContent()) > t2, 'the timer keeps advancing');
    assert.equal(activeCount(), 1);

    // A second tab of alice: shows "live in another tab", starts nothing.
    const second = await aliceCtx.newPage();
    await second.goto(`${server.url}/`);
    await second.waitForSelector('[data-testid=live-elsewhere]:not([hidden])');
    assert.equal(await second.locator('[data-testid=go-live]').isHidden(), true);
    assert.ok(seconds(await second.locator('[data-testid=timer]').textContent()) >= 3, 'the real elapsed time, not a restart');
    await second.close();
    assert.equal(activeCount(), 1);

    // Reload: bob sees her offline within 1 s; the reloaded page is not live.
    const [, offAfterReload] = await Promise.all([alicePage.reload(), timeUntilLive(bobPage, alice, false)]);
    assert.ok(offAfterReload < 1000, `bob saw alice offline ${offAfterReload.toFixed(0)} ms after the reload`);
    assert.equal(await listenLink.count(), 0, 'no Listen while she is offline');
    await alicePage.waitForSelector('[data-testid=go-live]:not([hidden])');
    assert.equal(await alicePage.locator('[data-testid=stop]').isHidden(), true);
    assert.equal(activeCount(), 0);
    assert.equal(lastSession().end_reason, 'page_unload');

    // The friend page shows her status too.
    const friendPage = await bobCtx.newPage();
    await friendPage.goto(`${server.url}/u/${alice}`);
    await friendPage.waitForSelector('[data-testid=friend-state]:text("Offline")');

    // Live again, then close the tab: bob sees her offline within 1 s.
    await Promise.all([alicePage.click('[data-testid=go-live]'), timeUntilLive(bobPage, alice, true)]);
    await friendPage.waitForSelector('[data-testid=friend-state]:text("Live")', { timeout: 2000 });
    const [, offAfterClose] = await Promise.all([alicePage.close({ runBeforeUnload: true }), timeUntilLive(bobPage, alice, false)]);
    assert.ok(offAfterClose < 1000, `bob saw alice offline ${offAfterClose.toFixed(0)} ms after the tab closed`);
    assert.equal(activeCount(), 0);
    assert.ok(['page_unload', 'socket_closed'].includes(lastSession().end_reason), lastSession().end_reason);
    await friendPage.waitForSelector('[data-testid=friend-state]:text("Offline")', { timeout: 2000 });

    // Nothing started by itself afterwards.
    alicePage = await aliceCtx.newPage();
    await alicePage.goto(`${server.url}/`);
    await alicePage.waitForSelector('[data-testid=go-live]:not([hidden])');
    await alicePage.waitForTimeout(500);
    assert.equal(activeCount(), 0);
  });

  // Friend requests and friends as a user handles them: an empty request is named, a refusal goes once it says
  // nothing any more, a declined request is said so, and removing a friend asks first.
  it('requests and friends: empty input, stale errors, a decline, removal asked first', async () => {
    const gina = uniqueName('gina');
    const hugo = uniqueName('hugo');
    const ivan = new Client(server.url);
    await ivan.register(uniqueName('ivan'));
    await withContexts(2, {}, async (gCtx, hCtx) => {
      const g = await register(gCtx, server.url, gina);
      const h = await register(hCtx, server.url, hugo);
      const requestCount = () => query(server.dbPath, 'SELECT count(*) AS n FROM friend_requests')[0].n;
      const before = requestCount();

      // Empty: said on the page, nothing sent.
      await g.click('[data-testid=send-request]');
      assert.equal(await g.locator('[data-testid=request-error]').textContent(), 'Enter the username of the friend to ask.');
      assert.equal(requestCount(), before);
      await g.fill('[data-testid=request-username]', 'x');
      assert.equal(await g.locator('[data-testid=request-error]').textContent(), '', 'typing clears it');

      // Twice: refused; once hugo accepts, the refusal is gone.
      await g.fill('[data-testid=request-username]', hugo);
      await g.click('[data-testid=send-request]');
      await g.waitForSelector(`[data-testid="outgoing-${hugo}"]`);
      await g.fill('[data-testid=request-username]', hugo);
      await g.click('[data-testid=send-request]');
      await g.waitForSelector('[data-testid=request-error]:text("already pending")');
      await h.click(`[data-testid="accept-${gina}"]`, { timeout: 3000 });
      await friendRow(g, hugo).waitFor({ timeout: 3000 });
      assert.equal(await g.locator('[data-testid=request-error]').textContent(), '');

      // hugo asks ivan in his page; ivan declines (on the API): hugo's page says so.
      await h.fill('[data-testid=request-username]', ivan.username);
      await h.click('[data-testid=send-request]');
      await h.waitForSelector(`[data-testid="outgoing-${ivan.username}"]`, { timeout: 3000 });
      const incoming = await ivan.get('/api/friends/requests');
      const req = incoming.body.incoming.find((r) => r.from === hugo);
      assert.ok(req, 'ivan has hugo\'s request');
      assert.equal((await ivan.post(`/api/friends/requests/${req.id}/decline`)).status, 200);
      await h.waitForSelector(`[data-testid=request-note]:text("${ivan.username} declined your friend request.")`,
        { timeout: 3000 });
      assert.equal(await h.locator(`[data-testid="outgoing-${ivan.username}"]`).count(), 0);

      // Remove asks first: No keeps the friend; Yes removes, and hugo's page of gina stops showing her.
      const hugoSeesGina = await hCtx.newPage();
      await hugoSeesGina.goto(`${server.url}/u/${gina}`);
      await hugoSeesGina.waitForSelector('[data-testid=friend-state]:text("Offline")');
      await hugoSeesGina.waitForSelector('#recordings-card:not([hidden])');
      let asked = '';
      g.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
      await g.click(`[data-testid="remove-${hugo}"]`);
      assert.match(asked, new RegExp(`Remove ${hugo} from your friends\\?`));
      await g.waitForTimeout(300);
      assert.equal(await friendRow(g, hugo).count(), 1, 'dismissed: still friends');
      g.once('dialog', (d) => d.accept());
      await g.click(`[data-testid="remove-${hugo}"]`);
      await g.waitForSelector(`[data-testid="friend-${hugo}"]`, { state: 'detached', timeout: 3000 });
      await hugoSeesGina.waitForSelector(`[data-testid=error]:text("You are not friends with ${gina} any more.")`,
        { timeout: 3000 });
      assert.equal(await hugoSeesGina.locator('#recordings-card').isHidden(), true, 'her recordings are not shown');
    });
  });

  // Empty fields on the login and register forms are named on the page; nothing is sent for them.
  it('the login and register forms name the empty fields', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const posts = [];
      page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
      for (const form of ['login', 'register']) {
        await page.goto(`${server.url}/${form}`);
        await page.click('[data-testid=submit]');
        assert.equal(await page.textContent('[data-testid=error]'), 'Enter your username and your password.', form);
        await page.fill('[data-testid=username]', 'somebody');
        assert.equal(await page.textContent('[data-testid=error]'), '', `${form}: typing clears it`);
        await page.click('[data-testid=submit]');
        assert.equal(await page.textContent('[data-testid=error]'), 'Enter your password.', form);
        assert.equal(await page.evaluate(() => document.activeElement.id), 'password', `${form}: the cursor is there`);
      }
      assert.deepEqual(posts, [], 'nothing was sent');
      // Logged in, /login shows the dashboard.
      await registerInPage(ctx, server.url, uniqueName('lena'));
      await page.goto(`${server.url}/login`);
      await page.waitForURL(`${server.url}/`, { timeout: 3000 });
      // A log-out the server refuses is said; the page stays.
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      await page.route('**/api/auth/logout', (route) => route.fulfill({ status: 503, contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'database_unavailable', message: 'the database is not reachable' } }) }));
      await page.click('[data-testid=logout]');
      await page.waitForSelector('[data-testid=live-error]:text("Could not log out: the database is not reachable")',
        { timeout: 3000 });
      assert.equal(new URL(page.url()).pathname, '/');
    } finally {
      await ctx.close();
    }
  });

  // Long names (30 characters, the most a username has) and a phone's width: nothing wider than the screen.
  it('a 30-character username fits a 375 px wide screen, in its own header and in a friend\'s list', async () => {
    const longName = `${uniqueName('l')}_${'x'.repeat(30)}`.slice(0, 30);
    const other = uniqueName('kim');
    await withContexts(2, { viewport: { width: 375, height: 740 } }, async (lCtx, kCtx) => {
      const l = await register(lCtx, server.url, longName);
      const k = await register(kCtx, server.url, other);
      await l.fill('[data-testid=request-username]', other);
      await l.click('[data-testid=send-request]');
      await k.click(`[data-testid="accept-${longName}"]`, { timeout: 3000 });
      await friendRow(k, longName).waitFor({ timeout: 3000 });
      await friendRow(l, other).waitFor({ timeout: 3000 });
      for (const [who, page] of [['the long name\'s own page', l], ['the friend\'s page', k]]) {
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 375, `${who} is ${width} px wide`);
        const logout = await page.locator('[data-testid=logout]').boundingBox();
        assert.ok(logout.height < 60, `${who}: Log out stays on one line (${logout.height} px high)`);
      }
    });
  });

  // A phone's width, offline: the four noise-removal choices on one line, and no empty rows under them.
  it('on a 375 px screen the noise-removal choices sit on one line and the offline stream card has no empty rows', async () => {
    await withContexts(1, { viewport: { width: 375, height: 740 } }, async (ctx) => {
      const page = await register(ctx, server.url, uniqueName('pia'));
      const tops = await page.locator('[data-testid=strength] label').evaluateAll(
        (labels) => labels.map((l) => Math.round(l.getBoundingClientRect().top)));
      assert.equal(tops.length, 4);
      assert.equal(new Set(tops).size, 1, `the choices' tops: ${tops.join(', ')} px`);
      // Between the choices and the (reserved) error line: only the error line's own margin.
      const gap = await page.evaluate(() => {
        const error = document.querySelector('[data-testid=live-error]');
        return error.getBoundingClientRect().top - document.querySelector('[data-testid=strength]').getBoundingClientRect().bottom -
          parseFloat(getComputedStyle(error).marginTop);
      });
      assert.ok(gap <= 1, `${gap} px of empty rows under the choices`);
    });
  });

  // The page shows Go live as soon as it knows the user is offline, before its other lists have loaded: a click
  // then must start the stream, not be lost.
  it('Go live clicked while the page is still loading starts the stream', async () => {
    const ctx = await browser.newContext();
    try {
      const name = uniqueName('gina');
      const page = await register(ctx, server.url, name);
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      let holding = false;
      await page.route('**/api/friends', async (route) => {
        if (route.request().method() === 'GET') {
          holding = true;
          await held;
        }
        await route.continue();
      });
      await page.reload();
      await page.waitForSelector('[data-testid=go-live]:not([hidden])');
      assert.ok(holding, 'the friend list is still loading');
      await page.click('[data-testid=go-live]');
      release();
      await page.waitForSelector('[data-testid=live-state]:text-is("Live")', { timeout: 5000 });
      await page.waitForSelector('[data-testid=timer]:not([hidden])');
      const sessions = query(server.dbPath, `SELECT s.ended_at FROM stream_sessions s JOIN users u ON u.id = s.user_id ` +
        `WHERE u.username = '${name}'`);
      assert.equal(sessions.length, 1);
      assert.equal(sessions[0].ended_at, null);
      await page.click('[data-testid=stop]');
      await page.waitForSelector('[data-testid=go-live]:not([hidden])', { timeout: 5000 });
    } finally {
      await ctx.close();
    }
  });

  // The request lists load while a push may come: a friend request pushed while a load is on its way is still shown
  // when that load's answer (made before the request) arrives.
  it('a friend request pushed while the request lists are loading is shown, not overwritten by the older answer', async () => {
    const carol = uniqueName('carol');
    const dave = new Client(server.url);
    await dave.register(uniqueName('dave'));
    await new Client(server.url).register(carol);
    const ctx = await browser.newContext();
    try {
      // GET /api/friends/requests answered by the server at once, handed to the page only when `hold` lets it.
      let hold = null;
      let loads = 0;
      const held = [];
      await ctx.route('**/api/friends/requests', async (route) => {
        if (route.request().method() !== 'GET') return route.continue();
        const response = await route.fetch();
        loads += 1;
        if (hold) {
          held.push(loads);
          await hold;
        }
        await route.fulfill({ response });
      });
      const erin = uniqueName('erin');
      const page = await register(ctx, server.url, erin);
      // The page's own load and the one its presence snapshot makes: the socket is up.
      for (let i = 0; i < 100 && loads < 2; i++) await page.waitForTimeout(50);
      assert.ok(loads >= 2, `the page loaded its request lists at start and on its socket's snapshot (${loads})`);

      let release;
      hold = new Promise((resolve) => { release = resolve; });
      // erin asks carol: the page loads its lists again; the answer (carol outgoing, nothing incoming) is held.
      await page.fill('[data-testid=request-username]', carol);
      await page.click('[data-testid=send-request]');
      for (let i = 0; i < 100 && held.length === 0; i++) await page.waitForTimeout(50);
      assert.equal(held.length, 1, 'the load after the request is on its way');
      // dave asks erin now: the push reaches her page while that load is held.
      const r = await dave.post('/api/friends/requests', { username: erin });
      assert.equal(r.status, 201);
      await page.waitForSelector(`[data-testid="incoming-${dave.username}"]`, { timeout: 3000 });

      hold = null;
      release();
      await page.waitForSelector(`[data-testid="outgoing-${carol}"]`, { timeout: 3000 });
      await page.waitForTimeout(500);  // the held answer, and whatever the page does with it
      assert.equal(await page.locator(`[data-testid="incoming-${dave.username}"]`).count(), 1,
        "dave's request is still shown");
      assert.equal(await page.locator(`[data-testid="outgoing-${carol}"]`).count(), 1, 'and her own to carol');
      await page.click(`[data-testid="accept-${dave.username}"]`);
      await friendRow(page, dave.username).waitFor({ timeout: 3000 });
    } finally {
      // A load the page makes as it closes may still be in the route: it is dropped, not an error of the test.
      await ctx.unrouteAll({ behavior: 'ignoreErrors' });
      await ctx.close();
    }
  });
});
