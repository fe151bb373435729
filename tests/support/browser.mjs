// Debian's Chromium, headless, driven by playwright-core. Never downloads a browser.
import fs from 'node:fs';

import { chromium } from 'playwright-core';

import { tempDir } from './server.mjs';

export const chromiumPath = process.env.FC25_CHROMIUM || '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

export async function launchBrowser({ args = [] } = {}) {
  if (!fs.existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath} (scripts/setup.sh installs it)`);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: [...chromiumArgs, ...args] });
}

export { tempDir };
