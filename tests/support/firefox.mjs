// Debian's Firefox ESR, headless, driven by puppeteer-core over WebDriver BiDi. Never downloads a browser.
// Firefox's fake device plays a tone, so pages get a microphone made with WebAudio from a test WAV instead: what is
// tested is Firefox's own WebRTC talking to fc25.
import fs from 'node:fs';

import puppeteer from 'puppeteer-core';

import { trackBrowser } from './artifacts.mjs';

export const firefoxPath = process.env.FC25_FIREFOX || '/usr/bin/firefox-esr';

export async function launchFirefox() {
  if (!fs.existsSync(firefoxPath)) throw new Error(`Firefox not found at ${firefoxPath} (scripts/setup.sh installs firefox-esr)`);
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxPath,
    headless: true,
    dumpio: Boolean(process.env.FC25_FIREFOX_DUMPIO),
    env: { ...process.env, ...(process.env.FFHOME ? { HOME: process.env.FFHOME } : {}) },
    protocol: 'webDriverBiDi',
    extraPrefsFirefox: {
      'media.navigator.permission.disabled': true,          // getUserMedia without a prompt
      'media.autoplay.default': 0,                           // listeners' <audio> may play
      'media.autoplay.block-webaudio': false,
      'media.peerconnection.ice.obfuscate_host_addresses': false,  // host candidates as they are, not mDNS names
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.mtransport_process': false,
      'network.process.enabled': false,
      'media.cubeb.force_mock_context': true,               // no sound device here: a mock one, so WebAudio runs
    },
  });
  return trackBrowser(browser, () => browser.pages());
}

// Replaces getUserMedia with a MediaStream of the WAV file `wavPath` (looped), made with WebAudio. Counts the
// calls in window.__micRequests.
export function fakeMicrophone(wavPath) {
  const base64 = fs.readFileSync(wavPath).toString('base64');  // inline: the pages' CSP allows no other fetch
  return `(() => {
    window.__micRequests = 0;
    const md = navigator.mediaDevices;
    if (!md) return;
    md.getUserMedia = async () => {
      window.__micRequests++;
      const ctx = new AudioContext({ sampleRate: 48000 });
      const bytes = Uint8Array.from(atob(${JSON.stringify(base64)}), (c) => c.charCodeAt(0));
      const data = bytes.buffer;
      const buffer = await ctx.decodeAudioData(data);
      const src = ctx.createBufferSource();
      src.buffer = buffer;
      src.loop = true;
      const dest = ctx.createMediaStreamDestination();
      src.connect(dest);
      src.start();
      await ctx.resume();
      return dest.stream;
    };
  })();`;
}

// A page of `browser` logged in as `username` (password `password`) through the login form, at `url` afterwards.
export async function firefoxPage(browser, server, username, password, { initScript } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  if (initScript) await page.evaluateOnNewDocument(initScript);
  await page.goto(`${server.url}/login`);
  await page.type('[data-testid=username]', username);
  await page.type('[data-testid=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('[data-testid=submit]')]);
  await page.waitForSelector('[data-testid=go-live]:not([hidden])');
  return { context, page };
}
