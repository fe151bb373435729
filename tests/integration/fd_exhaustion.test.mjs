// A server out of file descriptors (a flood of connections, a low `ulimit -n`) neither spins a core on the
// connections it cannot accept nor floods its log, and serves again as soon as connections close.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import { startServer } from '../support/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

// CPU seconds the process has used (user + system), from /proc.
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;  // utime, stime (fields 14 and 15)
}

function connect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => resolve(s));
    s.on('error', () => resolve(s));
  });
}

describe('out of file descriptors', () => {
  let server;
  before(async () => {
    // 14 descriptors are open once the server has started; 48 leaves room for a few dozen connections.
    server = await startServer({ wrap: ['prlimit', '--nofile=48:48', '--'] });
  });
  after(async () => { await server.stop(); });

  it('waits instead of spinning, logs once a second, and recovers when connections close', async () => {
    const sockets = await Promise.all(Array.from({ length: 80 }, () => connect(server.port)));
    await sleep(500);
    const logLines = () => (server.logs().match(/cannot accept a connection/g) || []).length;
    const lines0 = logLines();
    const cpu0 = cpuSeconds(server.proc.pid);
    const t0 = Date.now();
    await sleep(3000);
    const busy = (cpuSeconds(server.proc.pid) - cpu0) / ((Date.now() - t0) / 1000);
    const lines = logLines() - lines0;
    assert.ok(busy < 0.25, `the server used ${(busy * 100).toFixed(0)} % of a core while it could not accept`);
    assert.match(server.logs(), /error \[http\] cannot accept a connection: Too many open files/);
    assert.ok(lines <= 4, `${lines} accept errors logged in 3 s (at most one a second)`);

    for (const s of sockets) s.destroy();
    let res;
    for (let i = 0; i < 50 && !res; ++i) {
      try { res = await fetch(`${server.url}/api/health`); } catch { await sleep(100); }
    }
    assert.equal(res?.status, 200, 'the server answers again once the connections are gone');
    const health = await res.json();
    assert.ok(health.failures['http accept'] > 0, `accept failures are counted: ${JSON.stringify(health.failures)}`);
  });
});
