// The cluster as deployed (docs/deploy.md): the shipped deploy/haproxy.cfg, run by a real HAProxy with a
// self-signed certificate on the test namespace's non-loopback address, in front of two fc25 nodes that share a
// real PostgreSQL and a real Redis. In Chromium over HTTPS (a secure page, so the microphone works): alice and bob
// register and become friends, each page on its own node; alice goes live, bob sees it through the other node;
// bob listens through his node (which relays her stream from hers) and hears her; alice stops, bob's page says so,
// the recording is listed for both and plays for alice (its file is on her node), its bytes fetched with HTTP Range
// through HAProxy.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, registerInPage, requireTestNetwork } from '../support/browser.mjs';
import { uniqueName } from '../support/client.mjs';
import { startPostgres } from '../support/postgres.mjs';
import { freePort, startRedis } from '../support/redis.mjs';
import { repoRoot, sharedDir, startServer, tempDir, until } from '../support/server.mjs';
import { makeCertificate } from '../support/tls.mjs';

const haproxyConfig = path.join(repoRoot, 'deploy/haproxy.cfg');
const speechFile = path.join(sharedDir, 'audio/libdf/clean_freesound_33711.wav');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The namespace's own address (scripts/netns-run.sh): browsers reach HAProxy there, as they would on a network.
function testAddress() {
  const iface = (os.networkInterfaces().fc25v0 || []).find((a) => a.family === 'IPv4');
  if (!iface) throw new Error('no fc25v0 interface: run inside scripts/netns-run.sh');
  return iface.address;
}

// GET through HAProxy with any certificate (the browser below is the one that is told to accept it).
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, headers }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url}: no answer within 5 s`)));
  });
}

// POST through HAProxy (JSON body, extra headers) -> {status, headers, body}.
function post(url, json, headers = {}) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(json);
    const req = https.request(url, { method: 'POST', rejectUnauthorized: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// One plain HTTP request to HAProxy's HTTP port: the raw answer's head.
function plainRequest(host, port, hostHeader, target) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => s.write(`GET ${target} HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`));
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

const register = registerInPage;

const nodeCookie = async (context) => (await context.cookies()).find((c) => c.name === 'fc25_node');

describe('HTTPS through HAProxy in front of two nodes, in Chromium', () => {
  let pg, redis, nodes, haproxy, haproxyLog = '', base, addr, httpPort, browser;
  before(async () => {
    requireTestNetwork();
    if (spawnSync('haproxy', ['-v']).status !== 0) throw new Error('haproxy is not installed (scripts/setup.sh installs it)');
    addr = testAddress();
    pg = startPostgres();
    redis = await startRedis();
    const env = { CHANNEL_BACKEND: 'redis', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port),
      FC25_DATABASE_URL: pg.url, FC25_DENOISER: 'passthrough', FC25_CLUSTER_SECRET: 'haproxy-test-cluster-secret',
      // As docs/deploy.md says for nodes behind HAProxy (here on loopback with them).
      FC25_SECURE_COOKIES: '1', FC25_TRUSTED_PROXIES: '127.0.0.1', FC25_REGISTRATIONS_PER_ADDRESS: '3' };
    nodes = [await startServer({ env, dataDir: tempDir() })];
    nodes.push(await startServer({ env, dataDir: tempDir() }));

    const cert = makeCertificate({ names: [addr] });
    const pem = path.join(cert.dir, 'haproxy.pem');   // HAProxy wants the chain and the key in one file
    fs.writeFileSync(pem, fs.readFileSync(cert.cert, 'utf8') + fs.readFileSync(cert.key, 'utf8'));
    httpPort = await freePort();
    const httpsPort = await freePort();
    const check = spawnSync('haproxy', ['-c', '-f', haproxyConfig], { encoding: 'utf8',
      env: { ...process.env, FC25_HAPROXY_CERT: pem } });
    assert.equal(check.status, 0, `haproxy -c -f deploy/haproxy.cfg: ${check.stdout}${check.stderr}`);
    haproxy = spawn('haproxy', ['-db', '-f', haproxyConfig], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env,
      FC25_HAPROXY_ADDR: addr, FC25_HAPROXY_HTTP_PORT: String(httpPort), FC25_HAPROXY_HTTPS_PORT: String(httpsPort),
      FC25_HAPROXY_CERT: pem, FC25_HAPROXY_LOG: 'stdout', FC25_HAPROXY_MAXCONN: '1000',
      FC25_NODE1: `127.0.0.1:${nodes[0].port}`, FC25_NODE2: `127.0.0.1:${nodes[1].port}` } });
    haproxy.stdout.on('data', (d) => { haproxyLog += d; });
    haproxy.stderr.on('data', (d) => { haproxyLog += d; });
    process.on('exit', () => { try { haproxy.kill('SIGKILL'); } catch { /* gone */ } });
    base = `https://${addr}:${httpsPort}`;
    await until(async () => (await get(`${base}/api/health`).catch(() => ({}))).status === 200, 5000,
      `HAProxy answering at ${base}`).catch((e) => { throw new Error(`${e.message}:\n${haproxyLog}`); });
    browser = await launchBrowser({ audioFile: speechFile, args: ['--ignore-certificate-errors'] });
  });
  after(async () => {
    await browser?.close();
    haproxy?.kill('SIGTERM');
    for (const n of nodes || []) await n.stop();
    await redis?.stop();
    pg?.down();
  });

  it('checks both nodes on /api/health, sends plain HTTP to HTTPS and keeps the nodes\' own paths inside', async () => {
    for (const n of nodes) await n.waitForLog(/GET \/api\/health 200/, 5000);
    const head = await plainRequest(addr, httpPort, 'fc25.example', '/recordings?x=1');
    assert.match(head, /^HTTP\/1\.1 301/);
    assert.match(head, /\r\nlocation: https:\/\/fc25\.example\/recordings\?x=1\r\n/i);
    assert.doesNotMatch(head, /fc25_session|<html/i, 'nothing served over plain HTTP');
    const health = await get(`${base}/api/health`);
    assert.match(health.headers['strict-transport-security'] || '', /max-age=\d+/);
    // Relays and recordings between nodes go node to node: HAProxy refuses them from outside, secret or not.
    for (const p of ['/internal/relay/1', '/internal/media/recordings/1.wav', '/INTERNAL/../internal/api/recordings/1/peaks']) {
      const res = await get(`${base}${p}`, { Authorization: 'Bearer guess' });
      assert.equal(res.status, 404, p);
      assert.doesNotMatch(String(res.body), /cluster_secret_required/, `${p} did not reach a node`);
    }
    for (const n of nodes) assert.doesNotMatch(n.logs(), /GET \/internal\//, 'no node saw it');
  });

  it('alice goes live from one node, bob on the other sees it; the recording is listed and plays through HAProxy', async (t) => {
    const aliceCtx = await browser.newContext();
    const bobCtx = await browser.newContext();
    const alice = uniqueName('alice');
    const bob = uniqueName('bob');
    const alicePage = await register(aliceCtx, base, alice);
    assert.equal(await alicePage.evaluate(() => window.isSecureContext), true, 'a secure page: the microphone may be asked for');
    const session = (await aliceCtx.cookies()).find((c) => c.name === 'fc25_session');
    assert.equal(session.secure, true, 'the session cookie is Secure behind HAProxy');
    // bob's browser is sent to the node alice's is not on (HAProxy's fc25_node cookie), so that what he sees of
    // her crosses nodes through Redis and PostgreSQL.
    const aliceNode = await nodeCookie(aliceCtx);
    assert.ok(aliceNode, 'HAProxy keeps a browser on one node');
    const other = aliceNode.value === 'node1' ? 'node2' : 'node1';
    await bobCtx.addCookies([{ ...aliceNode, value: other }]);
    const bobPage = await register(bobCtx, base, bob);
    assert.equal((await nodeCookie(bobCtx)).value, other);
    const [aliceServer, bobServer] = aliceNode.value === 'node1' ? nodes : [nodes[1], nodes[0]];
    assert.match(bobServer.logs(), new RegExp(`registered user=${bob}`), 'bob registered through the other node');

    // Friends through the UI.
    await alicePage.fill('[data-testid=request-username]', bob);
    await alicePage.click('[data-testid=send-request]');
    await alicePage.waitForSelector(`[data-testid="outgoing-${bob}"]`);
    await bobPage.click(`[data-testid="accept-${alice}"]`, { timeout: 5000 });
    await alicePage.locator(`[data-testid="friend-${bob}"]`).waitFor({ timeout: 5000 });

    // Live: the page's audio reaches alice's node over WebRTC; bob's page (wss through HAProxy) sees it.
    await alicePage.click('[data-testid=go-live]');
    await alicePage.waitForFunction(() => document.body.dataset.mediaState === 'connected', null, { timeout: 10000 });
    const liveAt = Date.now();
    await bobPage.waitForSelector(`[data-testid="friend-${alice}"][data-live="true"]`, { timeout: 5000 });
    assert.match(aliceServer.logs(), new RegExp(`stream started user=${alice}`));
    // Bob listens on his own node: it relays alice's stream from hers, and he hears it.
    await bobPage.goto(`${base}/u/${alice}`);
    await bobPage.waitForSelector('[data-testid=friend-timer]:not([hidden])');
    await bobPage.click('[data-testid=listen]');
    await bobPage.waitForFunction(() => Number(document.querySelector('[data-testid=listen-level]').dataset.maxDb) > -50,
      null, { timeout: 5000 });
    assert.match(bobServer.logs(), /listener joined user=\S+ stream=\S+ session=\d+ listener=\w+ relayed from http/);
    await sleep(Math.max(0, 3500 - (Date.now() - liveAt)));   // about 3 s recorded
    await alicePage.click('[data-testid=stop]');
    await alicePage.waitForSelector('[data-testid=go-live]:not([hidden])');
    await bobPage.waitForSelector('[data-testid=listen-note]:has-text("ended")', { timeout: 5000 });
    await bobPage.goto(`${base}/`);
    await bobPage.waitForSelector(`[data-testid="friend-${alice}"][data-live="false"]`, { timeout: 5000 });

    // The recording: listed for both (one database), played on bob's page. Its file is on alice's node's disk;
    // bob's node asks hers for the bytes.
    const mine = alicePage.locator('[data-testid=recordings] [data-testid^=recording-]').first();
    await mine.waitFor({ timeout: 5000 });
    const id = (await mine.getAttribute('data-testid')).replace('recording-', '');
    await bobPage.goto(`${base}/u/${alice}`);   // a friend's recordings are on her page
    const item = bobPage.locator(`[data-testid=recording-${id}]`);
    await item.waitFor({ timeout: 5000 });
    const audio = item.locator('audio');
    const duration = await audio.evaluate((a) => new Promise((resolve, reject) => {
      if (a.readyState >= 1) return resolve(a.duration);
      a.addEventListener('loadedmetadata', () => resolve(a.duration));
      a.addEventListener('error', () => reject(new Error(`audio error ${a.error && a.error.code}`)));
    }));
    t.diagnostic(`recording ${id}: ${duration.toFixed(2)} s`);
    assert.ok(duration >= 2 && duration <= 5, `about 3 s recorded (${duration})`);
    const played = await audio.evaluate((a) => new Promise((resolve, reject) => {
      a.muted = true;
      a.currentTime = 1;
      a.addEventListener('timeupdate', function once() {
        if (a.currentTime > 1.2) { a.removeEventListener('timeupdate', once); a.pause(); resolve(a.currentTime); }
      });
      a.addEventListener('error', () => reject(new Error('audio error')));
      a.play().catch(reject);
    }));
    assert.ok(played > 1.2, `it plays from 1 s on (${played})`);
    // The bytes a seek asks for, as the browser asks for them: a Range request through HAProxy and bob's node.
    const src = await audio.getAttribute('src');
    const cookies = (await bobCtx.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const whole = await get(base + src, { Cookie: cookies });
    assert.equal(whole.status, 200);
    const part = await get(base + src, { Cookie: cookies, Range: 'bytes=44-1043' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 44-1043/${whole.body.length}`);
    assert.deepEqual(part.body, whole.body.subarray(44, 1044));
    assert.match(bobServer.logs(), new RegExp(`GET /media/recordings/${id}\\.wav 206 .* user=${bob}`), 'served by bob\'s node');
    assert.doesNotMatch(aliceServer.logs(), new RegExp(`GET /media/recordings/${id}\\.wav .* user=${bob}`));
    await aliceCtx.close();
    await bobCtx.close();
  });

  it('a node counts registrations per browser address (X-Forwarded-For from HAProxy), not per proxy', async () => {
    // Registrations kept on node1 until its limit (3 per address) refuses one: the log names the browser's address
    // (the namespace's, where this process connects from), not HAProxy's 127.0.0.1.
    const csrf = await get(`${base}/api/csrf`, { Cookie: 'fc25_node=node1' });
    const token = JSON.parse(csrf.body).csrf_token;
    const cookie = `fc25_node=node1; fc25_csrf=${token}`;
    let refused;
    for (let i = 0; i < 4 && !refused; i++) {
      const r = await post(`${base}/api/auth/register`, { username: uniqueName('carol'), password: 'a fine password' },
        { Cookie: cookie, 'X-CSRF-Token': token });
      if (r.status === 429) refused = r;
      else assert.equal(r.status, 201, String(r.body));
    }
    assert.ok(refused, 'the fourth registration from one address at the latest is refused');
    assert.equal(JSON.parse(refused.body).error.code, 'too_many_registrations');
    await nodes[0].waitForLog(new RegExp(`registration throttled addr=${addr.replace(/\./g, '\\.')}\\b`));
    assert.doesNotMatch(nodes[0].logs(), /registration throttled addr=127\.0\.0\.1/);
  });
});
