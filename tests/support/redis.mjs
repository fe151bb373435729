// A real redis-server on a free loopback port, for tests of the Redis channel layer.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

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
