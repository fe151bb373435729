// A network namespace of its own behind one veth link, inside the test namespace (scripts/netns-run.sh): a
// browser started in it reaches the server only over that link, as a laptop reaches a server over its Wi-Fi, and
// the test takes the link down and up. The server listens on the link's near address; everything else in the
// test namespace (the test itself, other browsers) reaches it without the link.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { chromiumPath } from './browser.mjs';
import { tempDir } from './server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export const nearAddress = '10.205.0.1';   // the test namespace's end (where the server listens)
const farAddress = '10.205.0.2';           // the far namespace's end
const device = 'fc25l0';

export async function farNamespace() {
  const holder = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
  const own = fs.readlinkSync('/proc/self/ns/net');
  const nsPath = `/proc/${holder.pid}/ns/net`;
  for (let i = 0; i < 200; i++) {
    try {
      if (fs.readlinkSync(nsPath) !== own) break;
    } catch { /* not yet */ }
    await sleep(10);
  }
  if (fs.readlinkSync(nsPath) === own) throw new Error('unshare --net did not make a namespace');
  ip('link', 'add', device, 'type', 'veth', 'peer', 'name', 'fc25l1', 'netns', String(holder.pid));
  ip('addr', 'add', `${nearAddress}/24`, 'dev', device);
  ip('link', 'set', device, 'up');
  const inFar = (...args) => execFileSync('nsenter', ['--net=' + nsPath, 'ip', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  inFar('link', 'set', 'lo', 'up');
  inFar('addr', 'add', `${farAddress}/24`, 'dev', 'fc25l1');
  inFar('link', 'set', 'fc25l1', 'up');
  inFar('route', 'add', 'default', 'via', nearAddress);
  // Chromium for the far side: the same binary, entered into the namespace.
  const chromium = path.join(tempDir('fc25-far-'), 'chromium');
  fs.writeFileSync(chromium, `#!/bin/sh\nexec nsenter --net=${nsPath} -- ${chromiumPath} "$@"\n`, { mode: 0o755 });
  return {
    chromium,
    down: () => ip('link', 'set', device, 'down'),
    up: () => ip('link', 'set', device, 'up'),
    close() {
      try { ip('link', 'del', device); } catch { /* gone with the namespace */ }
      holder.kill('SIGKILL');
    },
  };
}
