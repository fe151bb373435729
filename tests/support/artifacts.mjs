// Screenshots of every page a failed browser test left open, kept where a failure report points
// ($FC25_ARTIFACTS_DIR, default <tmp>/fc25-artifacts), so that one can see what the user would have seen.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'node:test';

export const artifactsDir = process.env.FC25_ARTIFACTS_DIR || path.join(os.tmpdir(), 'fc25-artifacts');

// Open browsers, each with a function listing its pages (Playwright's and Puppeteer's differ).
const browsers = new Map();

export function trackBrowser(browser, pagesOf) {
  browsers.set(browser, pagesOf);
  browser.on('disconnected', () => browsers.delete(browser));
  return browser;
}

afterEach(async (t) => {
  if (t.passed || browsers.size === 0) return;
  fs.mkdirSync(artifactsDir, { recursive: true });
  const stem = `${path.basename(process.argv[1] || 'test', '.mjs')}-${t.name}`.replace(/[^\w.-]+/g, '-').slice(0, 90);
  let n = 0;
  for (const pagesOf of browsers.values()) {
    for (const page of await Promise.resolve(pagesOf()).catch(() => [])) {
      const file = path.join(artifactsDir, `${stem}-${++n}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => { n -= 1; });
    }
  }
  if (n > 0) t.diagnostic(`${n} screenshots of the open pages: ${artifactsDir}/${stem}-*.png`);
});
