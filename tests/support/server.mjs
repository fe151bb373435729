// Starts real `fc25 serve` processes on free loopback ports with temporary data directories, for tests.
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { databaseFor, testPostgresUrl } from './postgres.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fc25Bin = process.env.FC25_BIN || path.join(repoRoot, 'build/src/app/fc25');
export const sharedDir = process.env.FC25_SHARED_DIR || path.resolve(repoRoot, '../shared');

const running = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const p of running) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  if (process.env.FC25_KEEP_TEST_DATA !== '1') {
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  }
});

export function tempDir(prefix = 'fc25-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A sanitizer's report in a server's output (sanitized builds: scripts/sanitize.sh) fails the test file, even when
// no test looked at that server's exit. In a sanitized run (FC25_SANITIZE set) servers still running at the end
// are stopped gracefully first, so that LeakSanitizer checks them at exit.
const sanitizerReport = /ERROR: (AddressSanitizer|LeakSanitizer)|^\S+:\d+:\d+: runtime error: |WARNING: ThreadSanitizer/m;
const sanitizerReports = [];
const stoppers = new Set();
const outputsRead = new Set();
if (process.env.NODE_TEST_CONTEXT || /\.test\.mjs$/.test(process.argv[1] || '')) {  // test files, not benchmarks
  after(async () => {
    if (process.env.FC25_SANITIZE) await Promise.all([...stoppers].map((stop) => stop()));
    await Promise.race([Promise.all(outputsRead), sleep(5000)]);
    if (sanitizerReports.length) {
      throw new Error(`sanitizer report in fc25 serve output:\n${sanitizerReports.join('\n----\n')}`);
    }
  });
}

// GET url (https, any certificate: only for knowing that a server listens) -> status, or throws.
function probeHttps(url) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
  });
}

// startServer({env, args, dataDir, db, wrap, bind, tls}) -> { url, port, dataDir, dbPath, proc, logs(), waitForLog(re), stop(), kill() }
// `wrap`: a command that execs the rest of its arguments (the server's command line), e.g. to give the server a
// mount namespace of its own; it must exec, so that proc is the server.
// `tls`: {cert, key} PEM files: the server serves HTTPS (--tls-cert/--tls-key) and `url` is https://.
export async function startServer({ env = {}, args = [], dataDir, db, wrap = [], bind = '127.0.0.1', tls } = {}) {
  if (!fs.existsSync(fc25Bin)) throw new Error(`fc25 binary not found at ${fc25Bin} (build it, or set FC25_BIN)`);
  dataDir = dataDir || tempDir();
  const portFile = path.join(tempDir('fc25-port-'), 'port');
  const dbPath = db || path.join(dataDir, 'fc25.sqlite3');
  // The PostgreSQL pass (FC25_TEST_POSTGRES_URL): the same tests, each SQLite path a database of its own.
  const store = testPostgresUrl ? ['--database-url', databaseFor(dbPath)] : ['--db', dbPath];
  const command = [...wrap, fc25Bin, 'serve', '--bind', bind, '--port', '0', '--port-file', portFile,
    '--data-dir', dataDir, ...store, ...(tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : []), ...args];
  const scheme = tls ? 'https' : 'http';
  const proc = spawn(command[0], command.slice(1), {
    // Tests register many users from 127.0.0.1: the per-address registration limit is lifted unless a test sets it.
    env: { FC25_REGISTRATIONS_PER_ADDRESS: '0', ...process.env, FC25_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    running.delete(proc);
    resolve(code ?? signal);
  }));
  outputsRead.add(new Promise((resolve) => proc.on('close', () => {  // exited and all its output read
    const at = output.search(sanitizerReport);
    if (at >= 0) sanitizerReports.push(`pid ${proc.pid}:\n${output.slice(Math.max(0, at - 200), at + 6000)}`);
    resolve();
  })));
  let exitCode;
  exited.then((c) => { exitCode = c; });

  const deadline = Date.now() + 15000;
  let port;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`fc25 serve exited (${exitCode}) before listening:\n${output}`);
    if (fs.existsSync(portFile)) {
      port = Number(fs.readFileSync(portFile, 'utf8').trim());
      try {
        const status = tls ? await probeHttps(`https://${bind}:${port}/api/csrf`)
          : (await fetch(`http://${bind}:${port}/api/csrf`)).status;
        if (status === 200) break;
      } catch { /* not yet */ }
    }
    await sleep(50);
  }
  if (!port) {
    proc.kill('SIGKILL');
    throw new Error(`fc25 serve did not start within 15 s:\n${output}`);
  }
  const url = `${scheme}://${bind}:${port}`;
  const stopper = async () => {
    if (exitCode !== undefined) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  };
  stoppers.add(stopper);
  exited.then(() => stoppers.delete(stopper));
  return {
    url, port, dataDir, dbPath, proc,
    logs: () => output,
    async waitForLog(re, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (re.test(output)) return;
        await sleep(25);
      }
      throw new Error(`log never matched ${re} within ${timeoutMs} ms:\n${output}`);
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10000) {
      if (exitCode !== undefined) return exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (exitCode !== undefined) return exitCode;
      proc.kill('SIGKILL');
      return exited;
    },
  };
}

// Polls `fn` every 100 ms until it returns something truthy (returned), or fails naming `what` after `ms`.
export async function until(fn, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}
