// A real redis-server on a free loopback port, for tests of the Redis channel layer.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

import { Client, makeFriends, uniqueName } from './client.mjs';
import { startServer, tempDir } from './server.mjs';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function ping(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write('PING\r\n'));
    c.on('data', (d) => { c.destroy(); resolve(String(d).startsWith('+PONG')); });
    c.on('error', () => resolve(false));
  });
}

export async function startRedis({ port } = {}) {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error('redis-server is not installed (scripts/setup.sh installs it)');
  }
  port = port || await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  const exited = new Promise((r) => proc.on('exit', r));
  process.on('exit', () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } });
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !(await ping(port))) await new Promise((r) => setTimeout(r, 50));
  if (!(await ping(port))) throw new Error(`redis-server did not start on port ${port}`);
  return {
    port,
    pid: proc.pid,
    signal(sig) { proc.kill(sig); },   // e.g. SIGSTOP / SIGCONT: a Redis that hangs and comes back
    async stop() { proc.kill('SIGTERM'); await exited; },
    async kill() { proc.kill('SIGKILL'); await exited; },
  };
}

// Two fc25 serve processes, A and B, sharing one SQLite file and one real Redis; alice and bob are friends, both
// logged in through A, and bob has a presence socket on B (his cookies work on either process). `env` is added
// to the servers' environment. stop() ends the socket, both servers and Redis.
export async function twoProcessesWithFriends({ env = {} } = {}) {
  const redis = await startRedis();
  const all = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), ...env };
  const A = await startServer({ env: all, dataDir: tempDir() });
  const B = await startServer({ env: all, dataDir: tempDir(), db: A.dbPath });
  const alice = new Client(A.url);
  await alice.register(uniqueName('alice'));
  const bob = new Client(A.url);
  await bob.register(uniqueName('bob'));
  await makeFriends(alice, bob);
  bob.baseUrl = B.url;
  const bobSock = bob.openPresence();
  await bobSock.ready;
  await bobSock.next((m) => m.type === 'snapshot');  // taken: a later next('snapshot') waits for a fresh one
  const pair = {
    redis, A, B, alice, bob, bobSock,
    async stop() {   // (a test that restarts Redis puts the new one in pair.redis)
      bobSock.close();
      await A.stop();
      await B.stop();
      await pair.redis.stop();
    },
  };
  return pair;
}
