// Debian's Chromium, headless, driven by playwright-core. Never downloads a browser.
import fs from 'node:fs';
import os from 'node:os';
import { after, before } from 'node:test';

import { chromium } from 'playwright-core';

import { trackBrowser } from './artifacts.mjs';
import { Client } from './client.mjs';
import { startServer, tempDir } from './server.mjs';

export const chromiumPath = process.env.FC25_CHROMIUM || '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

// A fake microphone (Chromium's own beep, or `audioFile` looped from wherever it is when capture starts) that
// needs no permission prompt; WebRTC allowed to use the test namespace's addresses as they are.
export function mediaArgs(audioFile) {
  return ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    ...(audioFile ? [`--use-file-for-fake-audio-capture=${audioFile}`] : []),
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'];
}

// `executablePath`: a command that runs Debian's Chromium (e.g. in another network namespace).
export async function launchBrowser({ args = [], audioFile, executablePath = chromiumPath } = {}) {
  if (!fs.existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath} (scripts/setup.sh installs it)`);
  const browser = await chromium.launch({ executablePath, headless: true,
    args: [...chromiumArgs, ...mediaArgs(audioFile), ...args] });
  return trackBrowser(browser, () => browser.contexts().flatMap((c) => c.pages()));
}

// Media tests run inside the namespace scripts/netns-run.sh makes (scripts/test.sh does); elsewhere ICE has no
// path between the browser and the server, so they fail at once and say why.
export function requireTestNetwork() {
  const ifaces = Object.keys(os.networkInterfaces());
  if (process.env.FC25_NETNS !== '1' || !ifaces.includes('fc25v0')) {
    throw new Error('media tests must run inside the test network namespace: scripts/netns-run.sh node --test ...');
  }
}

// A user made through the API, logged in inside a new browser context by handing it the session cookie, on the
// dashboard with Go live shown. `initScript` runs in the page before its own scripts (to watch what it does).
export async function loggedInPage(browser, server, name, { initScript } = {}) {
  const client = new Client(server.url);
  await client.register(name);
  const ctx = await browser.newContext();
  const host = new URL(server.url).hostname;
  await ctx.addCookies([...client.cookies].map(([n, value]) => ({ name: n, value, domain: host, path: '/' })));
  if (initScript) await ctx.addInitScript(initScript);
  const page = await ctx.newPage();
  await page.goto(server.url + '/');
  await page.waitForSelector('[data-testid=go-live]:not([hidden])');
  return { client, ctx, page };
}

// Presses Go live and waits until the page's audio connection to the server is up.
export async function goLive(page) {
  await page.click('[data-testid=go-live]');
  await page.waitForSelector('[data-testid=stop]:not([hidden])', { timeout: 5000 });
  await page.waitForFunction(() => document.body.dataset.mediaState === 'connected', null, { timeout: 10000 });
}

// A server and Chromium for the tests of one describe block (media tests: inside the test network namespace):
// started before them, stopped after them. Their .server and .browser are set once started.
export function serverAndBrowser({ serverOptions = {}, audioFile } = {}) {
  const started = {};
  before(async () => {
    requireTestNetwork();
    started.server = await startServer(serverOptions);
    started.browser = await launchBrowser({ audioFile });
  });
  after(async () => {
    await started.browser?.close();
    await started.server?.stop();
  });
  return started;
}

export { tempDir };

// Registers `name` through the register page of `base` in a new page of `context`, as a person would; returns the
// page, on the dashboard with Go live shown.
export async function registerInPage(context, base, name) {
  const page = await context.newPage();
  await page.goto(`${base}/register`);
  await page.fill('[data-testid=username]', name);
  await page.fill('[data-testid=password]', 'a fine password');
  await page.click('[data-testid=submit]');
  await page.waitForURL(`${base}/`);
  await page.waitForSelector('[data-testid=go-live]:not([hidden])');
  return page;
}
