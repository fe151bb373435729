#!/usr/bin/env node
// Soak: one real `fc25 serve` under churn for a long time, watched for leaks, errors and crashes.
//
//   scripts/netns-run.sh node bench/soak/run.mjs [--minutes 30] [--broadcasters 8] [--listeners 40]
//       [--sockets 200] [--bad-rate 0.05] [--warmup MIN] [--settle S] [--json FILE] [--server-log FILE] [--no-heap]
//
// Churn, every part of it bounded in time and ending by itself:
//   - broadcasters (fc25-send, WebRTC, speech from a WAV): each live for a random 20-60 s, then off for 5-15 s;
//   - listeners (fc25-send --listen): each joins a live friend for 5-30 s, leaves, rests 2-8 s, again;
//   - presence sockets (ws): each opens as a page would (GET /api/me first), stays 5-40 s with pings, and is
//     then closed cleanly or dropped without a close frame;
//   - friendships between a random broadcaster and listener removed and made again 3-15 s later (a listener of
//     that stream is then cut off);
//   - bad requests, --bad-rate of the requests this tool makes itself (HTTP requests, socket upgrades and socket
//     messages; fc25-send's own are not counted): malformed JSON, oversized bodies and headers, invalid UTF-8 in
//     paths, unknown users, wrong CSRF tokens, bad SDP offers, huge sdpMLineIndex, oversized socket messages.
// All traffic goes to the server on 127.0.0.1 and, for media, between the test namespace's own veth addresses.
//
// The run is a warm-up (--warmup minutes; default 10 % of the run, 1-2 min), a pause in which everything stops
// and the server settles (the baseline sample), the rest of the churn, and the same pause again (the final sample):
// the baseline is taken once every kind of work has run, so pools the server fills on first use are in both.
// Every minute: server RSS, threads, open fds (/proc), requests made, 5xx, errors by kind, streams started/ended,
// listeners joined. At the end the server gets SIGTERM; then every recording row in the database must have a
// valid WAV file (RIFF sizes consistent with the file, 48 kHz mono 16-bit) whose duration and size match the row.
// Verdict: RSS growth < 5 MB baseline→final, threads and fds back to baseline (±2 threads, ±4 fds), no 5xx, no
// crash and exit code 0, every recording valid. Exit status 0 on PASS, 1 on FAIL. At the start, baseline and final
// samples the heap in use is also read from malloc (the server's /api/health): RSS may stay above its baseline
// with memory malloc keeps from the churn's peaks, which is not a leak; growth of the heap in use would be.
// Failures of the load generator itself (ICE gathering that did not finish on a starved machine) and refusals the
// churn causes on purpose (not_live, not_friends) are counted apart from errors.
//
// Must run inside the test network namespace (ICE needs an interface other than lo).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import WebSocket from 'ws';

import { requireTestNetwork } from '../../tests/support/browser.mjs';
import { Client, makeFriends } from '../../tests/support/client.mjs';
import { rawExchange, rawRequest } from '../../tests/support/raw_http.mjs';
import { fc25Bin, startServer, tempDir } from '../../tests/support/server.mjs';
import { query } from '../../tests/support/sqlite.mjs';
import { machine, modelDir, opt, sendBin, sleep, speechWav } from '../support.mjs';

const MINUTES = Number(opt('minutes', 30));
const CASTERS = Number(opt('broadcasters', 8));
const LISTENERS = Number(opt('listeners', 40));
const SOCKETS = Number(opt('sockets', 200));
const BAD_RATE = Number(opt('bad-rate', 0.05));
const WARMUP_MIN = Number(opt('warmup', Math.min(2, Math.max(1, MINUTES * 0.1))));
const SETTLE_S = Number(opt('settle', 10));
const JSON_FILE = opt('json');
const SERVER_LOG = opt('server-log');
const SOCKETS_PER_USER = 5;   // pool sockets per user (fc25 may cap sockets per user; fc25-send adds one more)
const RSS_LIMIT_MB = 5;
// After the settle pause nothing of the churn is left, so threads and fds should be exactly as at the baseline.
// The tolerance allows for work that is legitimately parked, not leaked: an idle pooled thread that has not yet
// timed out (GLib/GStreamer thread pools), a kept-alive connection of a pool (SQLite, the channel layer). A leak
// of one thread or fd per stream, listener or socket would be tens to thousands over the run.
const THREAD_TOL = 2;
const FD_TOL = 4;
const PASSWORD = 'soak password';

if (!(MINUTES > WARMUP_MIN)) throw new Error(`--minutes (${MINUTES}) must be longer than the warm-up (${WARMUP_MIN})`);
requireTestNetwork();
if (!fs.existsSync(sendBin)) throw new Error(`fc25-send not built at ${sendBin} (set FC25_BUILD_DIR or FC25_SEND)`);

const log = (...a) => console.error(...a);
const rand = (a, b) => a + Math.random() * (b - a);
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const now = () => Date.now();

// Every fetch gives up after 20 s: a hung server shows as errors, never as a hung soak.
const realFetch = globalThis.fetch;
globalThis.fetch = (url, init = {}) => realFetch(url, { signal: AbortSignal.timeout(20000), ...init });

// --- counters -----------------------------------------------------------------------------------------------------
const stats = {
  requests: 0, bad: 0, http5xx: 0,
  streamsStarted: 0, streamsEnded: 0,
  broadcastCycles: 0, broadcastOk: 0,
  listenAttempts: 0, listenersJoined: 0,
  socketsOpened: 0, socketsClosed: 0, socketsTerminated: 0,
  friendsRemoved: 0, friendsReadded: 0,
};
const errors = new Map();          // kind -> count (anything a healthy server under this churn should not cause)
const refusals = new Map();        // kind -> count: refusals the churn itself causes (a friendship or stream gone meanwhile)
const errorExamples = new Map();   // kind -> first detail
const fiveXX = [];                 // first 50: {at, what, status, body}
const badOutcomes = new Map();     // bad request name -> Map(outcome -> count)
const endReasons = new Map();      // reasons the server gave for ending a listener or broadcast early
const t0 = now();
const at = () => `${((now() - t0) / 60000).toFixed(2)} min`;

function err(kind, detail = '') {
  errors.set(kind, (errors.get(kind) || 0) + 1);
  if (!errorExamples.has(kind)) errorExamples.set(kind, String(detail).slice(0, 400));
}
// Failures of the load generator itself, before it contacts the server (a client starved of CPU on a shared
// machine cannot gather its ICE candidates in time): they say how loaded the machine was, nothing about fc25.
const loadgenFailures = new Map();
function loadgen(kind) { loadgenFailures.set(kind, (loadgenFailures.get(kind) || 0) + 1); }
function refused(kind) { refusals.set(kind, (refusals.get(kind) || 0) + 1); }
function five(what, status, body) {
  stats.http5xx += 1;
  if (fiveXX.length < 50) fiveXX.push({ at: at(), what, status, body: String(body).slice(0, 400) });
  log(`  5xx at ${at()}: ${what} -> ${status} ${String(body).slice(0, 200)}`);
}
// What this tool sent last (to name the request that took a server down).
const recent = [];
const remember = (what) => { recent.push(`${at()} ${what}`); if (recent.length > 15) recent.shift(); };
const bump = (map, k) => map.set(k, (map.get(k) || 0) + 1);
process.on('unhandledRejection', (e) => err('soak tool: unhandled rejection', e?.stack || e));

// --- the server -----------------------------------------------------------------------------------------------------
const dataDir = tempDir('fc25-soak-');
const server = await startServer({
  dataDir,
  env: { FC25_MODEL_DIR: modelDir, FC25_REGISTRATIONS_PER_ADDRESS: '0' },
});
const pid = server.proc.pid;
let crashed = null;      // set if the server exits before we stop it
let stopping = false;
server.proc.on('exit', (code, signal) => {
  if (!stopping) {
    crashed = { at: at(), code, signal, last_requests: [...recent], last_log: server.logs().trim().split('\n').slice(-25) };
    log(`SERVER EXITED at ${at()}: code ${code} signal ${signal}; the last requests this tool sent:`);
    for (const r of recent) log(`   ${r}`);
    log('its last log lines:');
    for (const l of crashed.last_log) log(`   ${l}`);
  }
});
log(`fc25 serve pid ${pid} on ${server.url}, data ${dataDir}`);
log(`binary ${fc25Bin}; fc25-send ${sendBin}`);

// Child processes (fc25-send), killed if the soak itself is interrupted.
const children = new Set();
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL'); } catch { /* gone */ } });
process.on('SIGINT', () => { log('interrupted'); process.exit(130); });

// --- HTTP through the test client, counted ----------------------------------------------------------------------------
async function call(client, method, p, opts = {}, { bad = false } = {}) {
  stats.requests += 1;
  if (bad) stats.bad += 1;
  const shape = `${method} ${p.split('?')[0].replace(/\/\d+(?=\/|$)/g, '/N').replace(/(friends|u)\/[\w.-]+$/, '$1/NAME')}`;
  remember(`${method} ${p}`);
  try {
    const r = await client.request(method, p, opts);
    if (r.status >= 500) five(shape, r.status, r.text);
    return r;
  } catch (e) {
    err(`http ${shape}: ${e.cause?.code || e.name}`, e.cause?.message || e.message);
    return null;
  }
}

// --- presence sockets (plain ws: the test wrapper keeps every message, which a long run cannot afford) -----------------
function openSocket(client, clientId, { onMessage, headers = {} } = {}) {
  const url = `${client.baseUrl.replace(/^http/, 'ws')}/ws/presence/?client_id=${clientId}`;
  const ws = new WebSocket(url, { headers: { Origin: client.baseUrl, Cookie: client.cookieHeader(), ...headers } });
  const s = { ws, closeCode: null };
  s.closed = new Promise((resolve) => ws.on('close', (code) => { s.closeCode = code; resolve(code); }));
  s.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no snapshot within 10 s')), 10000);
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode })));
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
    ws.on('close', (code) => { clearTimeout(timer); reject(new Error(`closed (${code}) before the snapshot`)); });
    ws.on('message', (data, isBinary) => {
      let msg;
      try { msg = JSON.parse(String(data)); } catch { err('socket: server sent a message that is not JSON', String(data).slice(0, 200)); return; }
      if (isBinary) err('socket: server sent a binary message', String(data).slice(0, 200));
      if (msg.type === 'snapshot') { clearTimeout(timer); resolve(msg); }
      onMessage?.(msg);
    });
  });
  s.ready.catch(() => {});
  s.ws.on('error', () => {});  // reported through `ready` or `closed`
  return s;
}
const withTimeout = (p, ms) => Promise.race([p, sleep(ms).then(() => 'timeout')]);

// --- users and friendships ----------------------------------------------------------------------------------------
const casterNames = Array.from({ length: CASTERS }, (_, i) => `cast${i}`);
const listenerNames = Array.from({ length: LISTENERS }, (_, j) => `lis${j}`);
const sockUserNames = Array.from({ length: Math.ceil(SOCKETS / SOCKETS_PER_USER) }, (_, k) => `sock${k}`);
const clients = new Map();   // username -> logged-in Client (its own session)
async function registerAll(names) {
  for (let i = 0; i < names.length; i += 4) {
    await Promise.all(names.slice(i, i + 4).map(async (n) => {
      const c = new Client(server.url);
      await c.register(n, PASSWORD);
      clients.set(n, c);
    }));
  }
}
log(`setup: ${CASTERS} broadcasters, ${LISTENERS} listeners, ${sockUserNames.length} socket users, 1 monitor`);
await registerAll([...casterNames, ...listenerNames, ...sockUserNames, 'soakmon']);
// Every listener, socket user and the monitor is a friend of every broadcaster.
await Promise.all(casterNames.map(async (cn) => {
  for (const f of [...listenerNames, ...sockUserNames, 'soakmon']) await makeFriends(clients.get(cn), clients.get(f));
}));
const friends = new Set();   // "cast3:lis7" pairs that are friends now
const inFlux = new Set();    // pairs being removed and re-added
for (const c of casterNames) for (const l of listenerNames) friends.add(`${c}:${l}`);
const mon = clients.get('soakmon');

// The monitor: one socket for the whole run, a friend of every broadcaster; knows who is live.
const live = new Map();      // caster -> session_id
let monitor = null;
let monitorDone = false;
function openMonitor() {
  monitor = openSocket(mon, 'soakmonitor', {
    onMessage: (m) => {
      if (m.type === 'snapshot') {
        live.clear();
        for (const f of m.friends || []) if (f.is_streaming) live.set(f.username, f.session_id);
      } else if (m.type === 'streaming_status') {
        if (m.is_streaming && !live.has(m.username)) { stats.streamsStarted += 1; live.set(m.username, m.session_id); }
        if (!m.is_streaming && live.has(m.username)) { stats.streamsEnded += 1; live.delete(m.username); }
      }
    },
  });
  monitor.closed.then((code) => { if (!stopping && !monitorDone) { err(`monitor socket closed by the server (${code})`); if (!crashed) setTimeout(openMonitor, 1000); } });
  return monitor.ready;
}
await openMonitor();

// --- fc25-send ------------------------------------------------------------------------------------------------------
// Runs fc25-send with `args`; resolves with its result lines (JSON), exit code and stderr. Killed after `limitS`.
function runSend(args, { nice = 0, limitS }) {
  const argv = [sendBin, '--port', String(server.port), '--password', PASSWORD, ...args];
  const p = nice ? spawn('nice', ['-n', String(nice), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  let out = '';
  let errText = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { errText = (errText + d).slice(-4000); });
  const timer = setTimeout(() => { err(`fc25-send ${args.includes('--listen') ? 'listener' : 'broadcaster'} hung: killed`); p.kill('SIGKILL'); }, limitS * 1000);
  return new Promise((resolve) => p.on('close', (code, signal) => {
    clearTimeout(timer);
    children.delete(p);
    const lines = [];
    for (const l of out.split('\n').filter(Boolean)) {
      try { const j = JSON.parse(l); if (!j.summary) lines.push(j); } catch { /* not a result line */ }
    }
    resolve({ lines, code: code ?? signal, stderr: errText });
  }));
}
// One kind per failure: the server's error code when it gave one, else fc25-send's words without numbers.
function failureKind(e) {
  const code = /"code":"(\w+)"/.exec(e)?.[1];
  if (code) return `refused: ${code}`;
  return e.replace(/\{.*$/, '').replace(/\d+(\.\d+)?/g, 'N').slice(0, 80).trim();
}
const fiveIn = (what, text) => {
  const m = /\b(5\d\d)\b/.exec(text || '');
  if (m && /(start|stop|login|csrf)\s*:?\s*5\d\d|"code":"internal"/.test(text)) five(what, Number(m[1]), text);
};

async function broadcasterLoop(i, deadline) {
  const name = casterNames[i];
  await sleep(rand(0, 5000));
  while (!crashed && deadline - now() > 15000) {
    const seconds = Math.min(rand(20, 60), (deadline - now()) / 1000 - 12);
    stats.broadcastCycles += 1;
    const r = await runSend(['--user', name, '--wav', speechWav, '--seconds', seconds.toFixed(1)], { limitS: seconds + 60 });
    if (!r.lines.length) err(`broadcast: fc25-send exited ${r.code} without a result`, r.stderr);
    for (const l of r.lines) {
      if (l.error) {
        if (/^ICE gathering/.test(failureKind(l.error))) loadgen(`broadcast ${failureKind(l.error)}`);
        else err(`broadcast ${failureKind(l.error)}`, l.error);
        fiveIn('fc25-send broadcast', l.error);
      } else {
        stats.broadcastOk += 1;
        if (l.ended_by_server) { bump(endReasons, `broadcast ended by the server: ${l.ended_by_server}`); err(`broadcast ended by the server: ${l.ended_by_server}`, JSON.stringify(l)); }
        if (l.stop && l.stop.stopped !== true) {
          if (l.stop.error?.code === 'internal') five('POST /api/stream/stop (fc25-send)', 500, JSON.stringify(l.stop));
          err('broadcast: stop did not stop', JSON.stringify(l.stop));
        }
      }
    }
    await sleep(Math.min(rand(5000, 15000), Math.max(0, deadline - now())));
  }
}

async function listenerLoop(j, deadline) {
  const name = listenerNames[j];
  await sleep(rand(0, 8000));
  while (!crashed && deadline - now() > 10000) {
    const choices = [...live.keys()].filter((c) => friends.has(`${c}:${name}`) && !inFlux.has(`${c}:${name}`));
    if (!choices.length) { await sleep(rand(1000, 3000)); continue; }
    const caster = pick(choices);
    const seconds = Math.min(rand(5, 30), (deadline - now()) / 1000 - 5);
    stats.listenAttempts += 1;
    const r = await runSend(['--listen', caster, '--user', name, '--seconds', seconds.toFixed(1), '--count-at-transport'],
      { nice: 10, limitS: seconds + 45 });
    if (!r.lines.length) err(`listen: fc25-send exited ${r.code} without a result`, r.stderr);
    for (const l of r.lines) {
      if (l.error) {
        // The stream may end, or the friendship be removed, between choosing and the server taking the offer.
        const kind = failureKind(l.error);
        if (/refused: (not_live|not_friends)|^the stream ended/.test(kind)) refused(`listen ${kind}`);
        else if (/^ICE gathering/.test(kind)) loadgen(`listen ${kind}`);
        else err(`listen ${kind}`, l.error);
        fiveIn('fc25-send listen', l.error);
      } else {
        stats.listenersJoined += 1;
        if (l.ended_by_server) bump(endReasons, `listener ended by the server: ${l.ended_by_server}`);
      }
    }
    await sleep(Math.min(rand(2000, 8000), Math.max(0, deadline - now())));
  }
}

const socketsOpen = new Set();
async function socketLoop(k, deadline) {
  const client = clients.get(sockUserNames[Math.floor(k / SOCKETS_PER_USER)]);
  await sleep(rand(0, 10000));
  while (!crashed && deadline - now() > 3000) {
    // As a page: who am I, my friends, now and then a friend's recordings and one of them.
    await call(client, 'GET', '/api/me');
    if (Math.random() < 0.3) await call(client, 'GET', '/api/friends');
    if (Math.random() < 0.05) await fetchRecording(client);
    stats.requests += 1;
    const s = openSocket(client, `soak${k}x${crypto.randomBytes(4).toString('hex')}`);
    try {
      await s.ready;
    } catch (e) {
      err(`socket open: ${e.status ? `refused ${e.status}` : e.message.replace(/\d+/g, 'N')}`, e.message);
      if (e.status >= 500) five('GET /ws/presence/ (upgrade)', e.status, e.message);
      s.ws.terminate();
      await sleep(rand(1000, 3000));
      continue;
    }
    stats.socketsOpened += 1;
    socketsOpen.add(s);
    const until = Math.min(now() + rand(5000, 40000), deadline);
    let closedEarly = false;
    s.closed.then(() => { closedEarly = true; });
    while (now() < until && !closedEarly) {
      await Promise.race([sleep(Math.min(20000, until - now())), s.closed]);
      if (closedEarly || now() >= until) break;
      stats.requests += 1;
      s.ws.send(JSON.stringify({ type: 'ping', t: now() }));
    }
    socketsOpen.delete(s);
    if (closedEarly) {
      err(`socket closed by the server (${s.closeCode})`);
    } else if (Math.random() < 0.5) {
      s.ws.close(1000);
      if (await withTimeout(s.closed, 5000) === 'timeout') { err('socket: clean close not completed within 5 s'); s.ws.terminate(); }
      stats.socketsClosed += 1;
    } else {
      s.ws.terminate();
      stats.socketsTerminated += 1;
    }
    await sleep(Math.min(rand(500, 5000), Math.max(0, deadline - now())));
  }
}

async function fetchRecording(client) {
  const caster = pick(casterNames);
  const list = await call(client, 'GET', `/api/recordings?username=${caster}`);
  const rec = list?.status === 200 ? pick(list.body.recordings || []) : null;
  if (!rec) return;
  stats.requests += 1;
  try {
    const res = await fetch(server.url + rec.url, { headers: { Cookie: client.cookieHeader(), Range: 'bytes=0-65535' } });
    await res.arrayBuffer();
    if (res.status >= 500) five('GET /media/recordings/N.wav', res.status, '');
    else if (res.status !== 206 && res.status !== 404) err(`recording download answered ${res.status}`);
  } catch (e) {
    err(`http GET /media/recordings/N.wav: ${e.cause?.code || e.name}`, e.message);
  }
}

// Friendships between a random broadcaster and listener: removed by either side, made again 3-15 s later.
async function friendLoop(deadline) {
  const tasks = new Set();
  while (!crashed && deadline - now() > 20000) {
    await sleep(rand(2000, 6000));
    const pairs = [...friends].filter((p) => !inFlux.has(p));
    if (!pairs.length) continue;
    const pair = pick(pairs);
    const [cn, ln] = pair.split(':');
    inFlux.add(pair);
    const task = (async () => {
      const [a, b] = Math.random() < 0.5 ? [clients.get(cn), clients.get(ln)] : [clients.get(ln), clients.get(cn)];
      const r = await call(a, 'DELETE', `/api/friends/${b.username}`);
      if (r?.status !== 200) err(`friend remove answered ${r?.status}`, r?.text);
      else stats.friendsRemoved += 1;
      friends.delete(pair);
      await sleep(Math.min(rand(3000, 15000), Math.max(0, deadline - now())));
      const req = await call(b, 'POST', '/api/friends/requests', { json: { username: a.username } });
      if (req?.status === 201) {
        const acc = await call(a, 'POST', `/api/friends/requests/${req.body.request.id}/accept`);
        if (acc?.status !== 200) err(`friend accept answered ${acc?.status}`, acc?.text);
      } else if (req?.status !== 200) {
        err(`friend request answered ${req?.status}`, req?.text);
      }
      stats.friendsReadded += 1;
      friends.add(pair);
      inFlux.delete(pair);
    })();
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  }
  await Promise.all([...tasks]);
}

// --- bad requests -----------------------------------------------------------------------------------------------------
const fingerprint = `sha-256 ${Array.from(crypto.randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':')}`;
const sdp = ({ pt = '111', rtpmap = `${pt} opus/48000/2`, fp = fingerprint } = {}) => [
  'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
  `m=audio 9 UDP/TLS/RTP/SAVPF ${pt}`, 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=recvonly', 'a=rtcp-mux',
  'a=ice-ufrag:soak', 'a=ice-pwd:soaksoaksoaksoaksoaksoak', `a=fingerprint:${fp}`, 'a=setup:actpass',
  `a=rtpmap:${rtpmap}`, '',
].join('\r\n');
const liveCaster = () => pick([...live.keys()]) || pick(casterNames);
const cookieOf = (c) => c.cookieHeader();
const upgradeHeaders = (extra = {}) => ({
  Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
  'Sec-WebSocket-Version': '13', Origin: server.url, Cookie: cookieOf(mon), ...extra,
});
const csrfHeaders = (token) => ({ Cookie: cookieOf(mon), 'X-CSRF-Token': token ?? mon.cookies.get('fc25_csrf') });
const jsonType = () => ({ 'Content-Type': 'application/json' });
// A CSRF cookie and token but no session (what a login or registration page sends).
const csrfOnly = () => ({ Cookie: `fc25_csrf=${mon.cookies.get('fc25_csrf')}`, 'X-CSRF-Token': mon.cookies.get('fc25_csrf') });

// Each: [name, function returning the outcome ("400 invalid_path", "closed", "error bad_offer", ...), expected].
const HTTP_OK = /^4\d\d\b/;
const badRequests = [
  ['GET /%ff', () => raw('GET', '/%ff'), HTTP_OK],
  ['GET /%c3', () => raw('GET', '/%c3'), HTTP_OK],
  ['DELETE /api/health/%ff', () => raw('DELETE', '/api/health/%ff'), HTTP_OK],
  ['GET /static/%ff', () => raw('GET', '/static/%ff'), HTTP_OK],
  ['GET /static/x.html%00.js', () => raw('GET', '/static/x.html%00.js'), HTTP_OK],
  ['GET status ?username=%ff', () => raw('GET', '/api/stream/status?username=%ff', { headers: { Cookie: cookieOf(mon) } }), HTTP_OK],
  ['DELETE /api/friends/%ff', () => raw('DELETE', '/api/friends/%ff', { headers: csrfHeaders() }), HTTP_OK],
  ['POST friend request, malformed JSON', () => raw('POST', '/api/friends/requests',
    { headers: { ...csrfHeaders(), ...jsonType() }, body: '{"username": "cast0"' }), HTTP_OK],
  ['POST register, body not UTF-8', () => raw('POST', '/api/auth/register', { headers: { ...csrfOnly(), ...jsonType() }, body: '{"username":"\xe9","password":"x"}' }), HTTP_OK],
  ['POST start, atten_lim_db 1e400', () => raw('POST', '/api/stream/start',
    { headers: { ...csrfHeaders(), ...jsonType() }, body: '{"client_id":"soakbad","atten_lim_db":1e400}' }), HTTP_OK],
  ['POST login, Content-Type text/\\xff', () => raw('POST', '/api/auth/login',
    { headers: { ...csrfOnly(), 'Content-Type': 'text/\xff' }, body: '{}' }), HTTP_OK],
  ['POST 70 KiB body', () => raw('POST', '/api/friends/requests',
    { headers: { ...csrfHeaders(), ...jsonType() }, body: `{"username":"${'a'.repeat(70 * 1024)}"}` }), /^(413|closed)\b/],
  ['GET with 20 KiB of headers', () => raw('GET', '/api/me', { headers: { Cookie: cookieOf(mon), 'X-Filler': 'b'.repeat(20 * 1024) } }), /^(431|closed)\b/],
  ['GET status of an unknown user', () => raw('GET', `/api/stream/status?username=nosuch${crypto.randomBytes(3).toString('hex')}`,
    { headers: { Cookie: cookieOf(mon) } }), /^404\b/],
  ['POST friend request to an unknown user', () => raw('POST', '/api/friends/requests',
    { headers: { ...csrfHeaders(), ...jsonType() }, body: `{"username":"nosuch${crypto.randomBytes(3).toString('hex')}"}` }), /^404\b/],
  ['DELETE friend with a wrong CSRF token', () => raw('DELETE', `/api/friends/${pick(casterNames)}`, { headers: csrfHeaders('f'.repeat(64)) }), /^403\b/],
  ['POST stop with a wrong CSRF token', () => raw('POST', '/api/stream/stop',
    { headers: { ...csrfHeaders('0'.repeat(64)), ...jsonType() }, body: '{}' }), /^403\b/],
  ['GET /api/friends without a session', () => raw('GET', '/api/friends'), /^401\b/],
  ['WS upgrade to /ws/%ff', () => raw('GET', '/ws/%ff', { headers: upgradeHeaders() }), HTTP_OK],
  ['WS upgrade with Origin \\xff', () => raw('GET', '/ws/presence/?client_id=soakbad', { headers: upgradeHeaders({ Origin: 'http://\xff' }) }), HTTP_OK],
  ['listen_offer, SDP not SDP', () => wsBad({ type: 'listen_offer', username: liveCaster(), sdp: 'hello, not SDP' }), /^error /],
  ['listen_offer, rtpmap:abc', () => wsBad({ type: 'listen_offer', username: liveCaster(), sdp: sdp({ rtpmap: 'abc opus/48000/2' }) }), /^error /],
  ['listen_offer, payload type 99999', () => wsBad({ type: 'listen_offer', username: liveCaster(), sdp: sdp({ pt: '99999' }) }), /^error /],
  ['listen_offer, fingerprint zz', () => wsBad({ type: 'listen_offer', username: liveCaster(), sdp: sdp({ fp: 'sha-256 zz' }) }), /^error /],
  ['webrtc_offer for a session not ours', () => wsBad({ type: 'webrtc_offer', session_id: live.get(liveCaster()) ?? 1, sdp: sdp() }), /^error /],
  ['ice_candidate, sdpMLineIndex 2^40', () => wsBad({ type: 'ice_candidate', listen_id: 'soak-none',
    candidate: 'candidate:1 1 udp 2122260223 10.203.0.2 9 typ host', sdpMLineIndex: 2 ** 40 }), /^error /],
  ['socket message not JSON', () => wsBad('{"type": "listen_offer", '), /^error /],
  ['socket text frame é (not an object)', () => wsBad('é'), /^error /],
  ['socket binary frame \\xff', () => wsOnce(Buffer.from([0xff]), { binary: true }), /^(error |close )/],
  ['socket message of 70 KiB', () => wsOnce(JSON.stringify({ type: 'ping', t: 'x'.repeat(70 * 1024) })), /^close 1009/],
];

async function raw(method, target, opts = {}) {
  try {
    const [res] = await rawExchange(server.port, [rawRequest(method, target, opts)], { timeoutMs: 10000 });
    if (!res) return 'closed';
    return `${res.status} ${res.body?.error?.code ?? ''}`.trim();
  } catch (e) {
    return /ECONNRESET|EPIPE/.test(e.code || e.message) ? 'closed' : `failed: ${e.message}`;
  }
}

// Bad messages on the monitor user's own socket for them (reopened when the server closes it).
let badSock = null;
let badWaiter = null;
async function badSocket() {
  if (badSock && badSock.closeCode === null) return badSock;
  const s = openSocket(mon, `soakbad${crypto.randomBytes(3).toString('hex')}`, {
    onMessage: (m) => { if (badWaiter && ['error', 'listen_answer', 'pong'].includes(m.type)) badWaiter(m); },
  });
  await s.ready;
  badSock = s;
  return s;
}
async function wsBad(msg) {
  let s;
  try { s = await badSocket(); } catch (e) { return `open failed: ${e.message}`; }
  const answer = new Promise((resolve) => { badWaiter = resolve; });
  s.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  const m = await Promise.race([answer, s.closed.then((c) => ({ type: 'close', code: c })), sleep(5000).then(() => ({ type: 'timeout' }))]);
  badWaiter = null;
  if (m.type === 'listen_answer') {
    // Taken as a real listener: let it go again.
    s.ws.send(JSON.stringify({ type: 'listen_stop', listen_id: m.listen_id }));
    return 'accepted (listen_answer)';
  }
  if (m.type === 'error') return `error ${m.error?.code}`;
  if (m.type === 'close') return `close ${m.code}`;
  return m.type;
}
// A message that may end the socket: on a socket of its own.
async function wsOnce(data, opts = {}) {
  const s = openSocket(mon, `soakonce${crypto.randomBytes(3).toString('hex')}`, {
    onMessage: (m) => { if (m.type === 'error') s.answer?.(m); },
  });
  try { await s.ready; } catch (e) { s.ws.terminate(); return `open failed: ${e.message}`; }
  const answer = new Promise((resolve) => { s.answer = resolve; });
  s.ws.send(data, opts);
  const m = await Promise.race([answer, s.closed.then((c) => ({ type: 'close', code: c })), sleep(5000).then(() => ({ type: 'timeout' }))]);
  s.ws.terminate();
  await withTimeout(s.closed, 2000);
  if (m.type === 'error') return `error ${m.error?.code}`;
  if (m.type === 'close') return `close ${m.code}`;
  return m.type;
}

async function badLoop(deadline) {
  while (!crashed && now() < deadline) {
    await sleep(100);
    while (!crashed && stats.bad < BAD_RATE * stats.requests && now() < deadline) {
      const [name, fn, expected] = pick(badRequests);
      remember(`bad request: ${name}`);
      stats.requests += 1;
      stats.bad += 1;
      const outcome = await fn();
      if (!badOutcomes.has(name)) badOutcomes.set(name, new Map());
      bump(badOutcomes.get(name), outcome);
      const status = Number(/^(\d{3})\b/.exec(outcome)?.[1]);
      if (status >= 500) five(`bad request: ${name}`, status, outcome);
      else if (!expected.test(outcome)) err(`bad request "${name}" answered "${outcome}"`);
    }
  }
  if (badSock) { badSock.ws.close(1000); await withTimeout(badSock.closed, 3000); badSock.ws.terminate(); badSock = null; }
}

// --- one phase of churn ---------------------------------------------------------------------------------------------
async function churn(ms, label) {
  const deadline = now() + ms;
  log(`${label}: churn for ${(ms / 60000).toFixed(1)} min`);
  const loops = [
    ...casterNames.map((_, i) => broadcasterLoop(i, deadline)),
    ...listenerNames.map((_, j) => listenerLoop(j, deadline)),
    ...Array.from({ length: SOCKETS }, (_, k) => socketLoop(k, deadline)),
    friendLoop(deadline),
    badLoop(deadline),
  ];
  // Every loop ends by itself soon after the deadline; anything left a minute later is killed and counted.
  const done = Promise.all(loops);
  if (await withTimeout(done, ms + 90000) === 'timeout') {
    err(`${label}: loops still running 90 s after the deadline`);
    for (const c of children) c.kill('SIGKILL');
    for (const s of socketsOpen) s.ws.terminate();
    await withTimeout(done, 10000);
  }
}

// --- samples --------------------------------------------------------------------------------------------------------
const samples = [];
function procSample() {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return {
      rss_mb: kb('VmRSS') / 1024,
      // Anonymous memory (heap: where a leak shows) and file-backed pages (libraries and the model, mapped on
      // first use) apart.
      rss_anon_mb: kb('RssAnon') / 1024,
      rss_file_mb: kb('RssFile') / 1024,
      threads: fs.readdirSync(`/proc/${pid}/task`).length,
      fds: fs.readdirSync(`/proc/${pid}/fd`).length,
    };
  } catch {
    return { rss_mb: null, rss_anon_mb: null, rss_file_mb: null, threads: null, fds: null };
  }
}
// What each open fd of the server is (a file path, a pipe, an eventfd, or a socket with its protocol, addresses and
// state), so a difference between the baseline and the final sample names what was left open.
function fdTable() {
  const sockets = new Map();   // inode -> description
  const states = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '0A': 'LISTEN' };
  const addr = (hex) => {
    const [ip, port] = hex.split(':');
    const v4 = ip.length === 8 ? ip.match(/../g).reverse().map((b) => parseInt(b, 16)).join('.') : `[${ip}]`;
    return `${v4}:${parseInt(port, 16)}`;
  };
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try { text = fs.readFileSync(`/proc/${pid}/net/${proto}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const state = proto.startsWith('tcp') ? ` ${states[f[3]] ?? f[3]}` : '';
      sockets.set(f[9], `${proto} ${addr(f[1])} -> ${addr(f[2])}${state}`);
    }
  }
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 7) sockets.set(f[6], `unix ${f[7] ?? '(unnamed)'}`);
    }
  } catch { /* no unix table */ }
  const out = [];
  let fds = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return out; }
  for (const fd of fds) {
    let target;
    try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    out.push(`${fd.padStart(4)} ${inode ? sockets.get(inode) ?? target : target.replace(dataDir, '<data>')}`);
  }
  return out.sort((a, b) => Number(a.trim().split(' ')[0]) - Number(b.trim().split(' ')[0]));
}
async function health() {
  try {
    const r = await realFetch(`${server.url}/api/health`, { signal: AbortSignal.timeout(5000) });
    return await r.json();
  } catch (e) {
    return { unreachable: e.cause?.code || e.message };
  }
}
async function sample(phase) {
  const s = {
    t_min: Number(((now() - t0) / 60000).toFixed(2)), phase, ...procSample(),
    requests: stats.requests, bad_requests: stats.bad, http_5xx: stats.http5xx,
    errors: Object.fromEntries(errors), refusals: Object.fromEntries(refusals), streams_started: stats.streamsStarted, streams_ended: stats.streamsEnded,
    live_now: live.size, listeners_joined: stats.listenersJoined, listen_attempts: stats.listenAttempts,
    sockets_open: socketsOpen.size, sockets_opened: stats.socketsOpened,
    friends_removed: stats.friendsRemoved, health: await health(),
  };
  samples.push(s);
  const nerr = [...errors.values()].reduce((a, b) => a + b, 0);
  log(`[${s.t_min.toFixed(1).padStart(5)} min ${phase.padEnd(8)}] rss ${s.rss_mb?.toFixed(1)} MB, ${s.threads} threads, ` +
    `${s.fds} fds | ${s.requests} requests (${s.bad_requests} bad), ${s.http_5xx} 5xx, ${nerr} errors | streams ` +
    `${s.streams_started} started / ${s.streams_ended} ended (${s.live_now} live), ${s.listeners_joined} listeners ` +
    `joined, ${s.sockets_open} sockets open` + (crashed ? ' | SERVER GONE' : ''));
  if (s.health && Object.keys(s.health.failures || {}).length) log(`   health failures: ${JSON.stringify(s.health.failures)}`);
  return s;
}

// The server's heap as malloc sees it (the `memory` of a sample's /api/health answer, from glibc's mallinfo2();
// --no-heap skips it): bytes in use by live allocations, apart from what the allocator keeps from earlier peaks.
// RSS can stay above its baseline without a leak (freed memory kept in malloc's arenas); heap in use cannot.
// (Asking malloc from outside, by calling into the process with a debugger, can break a thread's interrupted futex
// wait and abort it.)
const HEAP = !process.argv.includes('--no-heap');
function heapStats(h) {
  if (!HEAP || crashed) return null;
  if (h.unreachable) return { error: `/api/health unreachable: ${h.unreachable}` };
  if (!h.memory) return { error: 'no memory figures in /api/health' };
  return { system_mb: h.memory.heap_held_bytes / 2 ** 20, in_use_mb: h.memory.heap_in_use_bytes / 2 ** 20 };
}

// Nothing of the churn is running: wait SETTLE_S, then until threads and fds hold still for 5 s (at most 30 s).
async function settle(label) {
  await sleep(SETTLE_S * 1000);
  const end = now() + 30000;
  let last = procSample();
  let still = 0;
  while (now() < end && still < 5) {
    await sleep(1000);
    const s = procSample();
    still = s.threads === last.threads && s.fds === last.fds ? still + 1 : 0;
    last = s;
  }
  const s = await sample(label);
  s.fd_table = fdTable();
  s.heap = heapStats(s.health);
  if (s.heap) log(`   heap: ${s.heap.error ?? `${s.heap.in_use_mb.toFixed(1)} MB in use of ${s.heap.system_mb.toFixed(1)} MB taken from the system`}`);
  return s;
}

// --- the run --------------------------------------------------------------------------------------------------------
let minuteTimer = setInterval(() => { sample('churn'); }, 60000);
const startSample = await sample('start');
startSample.heap = heapStats(startSample.health);
await churn(WARMUP_MIN * 60000, 'warm-up');
const baseline = await settle('baseline');
if (!crashed) await churn((MINUTES - WARMUP_MIN) * 60000, 'soak');
clearInterval(minuteTimer);
minuteTimer = null;
const final = await settle('final');
monitorDone = true;
monitor.ws.close(1000);
await withTimeout(monitor.closed, 3000);

stopping = true;
const exitCode = crashed ? null : await server.stop('SIGTERM', 20000);
const logs = server.logs();
const logFile = SERVER_LOG || path.join(os.tmpdir(), `fc25-soak-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
fs.writeFileSync(logFile, logs);

// --- recordings -----------------------------------------------------------------------------------------------------
function checkWav(file, row) {
  let fd;
  try { fd = fs.openSync(file, 'r'); } catch (e) { return [`cannot open: ${e.code}`]; }
  try {
    const size = fs.fstatSync(fd).size;
    const read = (pos, n) => { const b = Buffer.alloc(n); return b.subarray(0, fs.readSync(fd, b, 0, n, pos)); };
    const problems = [];
    const h = read(0, 12);
    if (h.length < 12 || h.toString('latin1', 0, 4) !== 'RIFF' || h.toString('latin1', 8, 12) !== 'WAVE') return ['no RIFF/WAVE header'];
    if (h.readUInt32LE(4) !== size - 8) problems.push(`RIFF size ${h.readUInt32LE(4)} but file is ${size} bytes (expected ${size - 8})`);
    let pos = 12;
    let fmt = null;
    let data = null;
    while (pos + 8 <= size) {
      const c = read(pos, 8);
      const id = c.toString('latin1', 0, 4);
      const len = c.readUInt32LE(4);
      if (id === 'fmt ') {
        const f = read(pos + 8, 16);
        fmt = { format: f.readUInt16LE(0), channels: f.readUInt16LE(2), rate: f.readUInt32LE(4), byteRate: f.readUInt32LE(8), align: f.readUInt16LE(12), bits: f.readUInt16LE(14) };
      }
      if (id === 'data') data = { start: pos + 8, len };
      pos += 8 + len + (len & 1);
    }
    if (pos !== size) problems.push(`chunks end at ${pos}, file is ${size} bytes`);
    if (!fmt) problems.push('no fmt chunk');
    else if (fmt.format !== 1 || fmt.channels !== 1 || fmt.rate !== 48000 || fmt.bits !== 16 || fmt.byteRate !== 96000 || fmt.align !== 2) {
      problems.push(`format ${JSON.stringify(fmt)}, expected PCM 48000 Hz mono 16-bit`);
    }
    if (!data) return [...problems, 'no data chunk'];
    if (data.start + data.len > size) problems.push(`data chunk of ${data.len} bytes runs past the end of the file`);
    if (data.len % 2) problems.push(`data chunk of ${data.len} bytes is not whole samples`);
    const ms = Math.floor((Math.floor(data.len / 2) * 1000) / 48000);
    if (ms !== row.duration_ms) problems.push(`${ms} ms of audio, row says ${row.duration_ms} ms`);
    if (row.bytes !== size) problems.push(`${size} bytes, row says ${row.bytes}`);
    if (data.len === 0) problems.push('no audio');
    return problems;
  } finally {
    fs.closeSync(fd);
  }
}
const rows = query(server.dbPath, 'SELECT r.id, r.session_id, r.path, r.duration_ms, r.bytes, u.username FROM stream_recordings r JOIN users u ON u.id = r.user_id ORDER BY r.id');
const badRecordings = [];
for (const row of rows) {
  const problems = checkWav(path.join(dataDir, row.path), row);
  if (problems.length) badRecordings.push({ id: row.id, session_id: row.session_id, path: row.path, problems });
}
const sessions = query(server.dbPath, 'SELECT count(*) AS n, sum(ended_at IS NULL) AS open FROM stream_sessions')[0];
const reasons = query(server.dbPath, 'SELECT end_reason, count(*) AS n FROM stream_sessions GROUP BY end_reason ORDER BY n DESC');
const stillActive = query(server.dbPath, 'SELECT count(*) AS n FROM active_streams')[0].n;
const onDisk = fs.readdirSync(path.join(dataDir, 'streamed_audios')).filter((f) => f.endsWith('.wav') && !f.endsWith('_raw.wav'));
const orphans = onDisk.filter((f) => !rows.some((r) => path.basename(r.path) === f));

// Server log lines at warning level and above, by shape (numbers and names replaced).
const logKinds = new Map();
for (const m of logs.matchAll(/^\S+ (warning|error|critical)\s*\[(\S+)\] (.*)$/gm)) {
  bump(logKinds, `${m[1]} [${m[2]}] ${m[3].replace(/\d+(\.\d+)?/g, 'N').replace(/(user|client|listener|username)=\S+/g, '$1=X').slice(0, 160)}`);
}

// --- summary --------------------------------------------------------------------------------------------------------
const soakSamples = samples.filter((s) => s.phase === 'churn' && s.t_min > baseline.t_min);
const delta = (k) => (final[k] ?? NaN) - (baseline[k] ?? NaN);
const checks = [
  ['RSS growth baseline → final < 5 MB', delta('rss_mb') < RSS_LIMIT_MB, `${delta('rss_mb').toFixed(1)} MB`],
  [`threads back to baseline (±${THREAD_TOL})`, Math.abs(delta('threads')) <= THREAD_TOL, `${delta('threads') >= 0 ? '+' : ''}${delta('threads')}`],
  [`fds back to baseline (±${FD_TOL})`, Math.abs(delta('fds')) <= FD_TOL, `${delta('fds') >= 0 ? '+' : ''}${delta('fds')}`],
  ['no 5xx', stats.http5xx === 0, `${stats.http5xx}`],
  ['no crash, exit code 0 on SIGTERM', !crashed && exitCode === 0, crashed ? `exited at ${crashed.at} (${crashed.code ?? crashed.signal})` : `exit ${exitCode}`],
  ['every recording valid', badRecordings.length === 0 && rows.length > 0, `${rows.length - badRecordings.length}/${rows.length} valid`],
];
const pass = checks.every((c) => c[1]);
const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(d) : String(v));
log('');
log(`Soak: ${MINUTES} min (warm-up ${WARMUP_MIN} min), ${CASTERS} broadcasters, ${LISTENERS} listeners, ${SOCKETS} sockets, bad rate ${BAD_RATE}`);
log(`machine: ${machine()}`);
log('');
log('            start   baseline   final   growth');
for (const [k, label] of [['rss_mb', 'RSS MB'], ['rss_anon_mb', ' anon MB'], ['rss_file_mb', ' file MB'], ['threads', 'threads'], ['fds', 'fds']]) {
  log(`${label.padEnd(10)} ${fmt(startSample[k]).padStart(7)} ${fmt(baseline[k]).padStart(10)} ${fmt(final[k]).padStart(7)} ${fmt(delta(k)).padStart(8)}`);
}
{
  // fds open at the final sample that were not at the baseline (by what they are, not by number).
  const kind = (l) => l.trim().replace(/^\d+ /, '').replace(/:\d+ -> /, ':* -> ').replace(/\[\d+\]/g, '[N]');
  const before = new Map();
  for (const l of baseline.fd_table ?? []) bump(before, kind(l));
  const extra = [];
  for (const l of final.fd_table ?? []) {
    const k = kind(l);
    if (before.get(k) > 0) before.set(k, before.get(k) - 1); else extra.push(l.trim());
  }
  const gone = [...before].filter(([, n]) => n > 0).map(([k, n]) => `${k} ×${n}`);
  if (extra.length) log(`fds open at the final sample and not at the baseline:\n   ${extra.join('\n   ')}`);
  if (gone.length) log(`fds open at the baseline and not at the final sample:\n   ${gone.join('\n   ')}`);
}
for (const [k, label] of [['in_use_mb', 'heap in use (malloc) MB'], ['system_mb', 'heap held by malloc MB']]) {
  const [a, b, c] = [startSample, baseline, final].map((x) => x.heap?.[k]);
  if (b !== undefined && c !== undefined) log(`${label}: start ${fmt(a)}, baseline ${fmt(b)}, final ${fmt(c)}, growth ${fmt(c - b)}`);
}
if (soakSamples.length >= 2) {
  const rss = soakSamples.map((s) => s.rss_mb);
  log(`RSS under churn after the baseline: ${fmt(Math.min(...rss))}-${fmt(Math.max(...rss))} MB (first ${fmt(rss[0])}, last ${fmt(rss.at(-1))})`);
}
log('');
log(`requests made ${stats.requests} (${stats.bad} bad, ${(100 * stats.bad / Math.max(1, stats.requests)).toFixed(1)} %), 5xx ${stats.http5xx}`);
log(`broadcasts ${stats.broadcastCycles} (${stats.broadcastOk} went live and stopped), streams seen ${stats.streamsStarted} started / ${stats.streamsEnded} ended`);
log(`listen attempts ${stats.listenAttempts}, listeners joined ${stats.listenersJoined}`);
log(`sockets opened ${stats.socketsOpened} (${stats.socketsClosed} closed cleanly, ${stats.socketsTerminated} dropped)`);
log(`friendships removed ${stats.friendsRemoved}, made again ${stats.friendsReadded}`);
log(`stream sessions ${sessions.n} (${sessions.open ?? 0} never ended, ${stillActive} still marked active); end reasons: ${reasons.map((r) => `${r.end_reason} ${r.n}`).join(', ')}`);
log(`recordings ${rows.length} rows, ${badRecordings.length} invalid; ${orphans.length} WAV files without a row`);
for (const b of badRecordings.slice(0, 10)) log(`   recording ${b.id} (${b.path}): ${b.problems.join('; ')}`);
if (endReasons.size) log(`ended early by the server: ${[...endReasons].map(([k, n]) => `${k} ${n}`).join(', ')}`);
if (refusals.size) log(`refusals caused by the churn itself: ${[...refusals].map(([k, n]) => `${k} ${n}`).join(', ')}`);
if (loadgenFailures.size) log(`load generator failures (client side, before reaching the server): ${[...loadgenFailures].map(([k, n]) => `${k} ${n}`).join(', ')}`);
if (errors.size) {
  log('errors by kind:');
  for (const [k, n] of [...errors].sort((a, b) => b[1] - a[1])) log(`   ${String(n).padStart(5)}  ${k}${errorExamples.get(k) ? `  — e.g. ${errorExamples.get(k).slice(0, 200)}` : ''}`);
}
for (const f of fiveXX.slice(0, 10)) log(`5xx at ${f.at}: ${f.what} -> ${f.status} ${f.body}`);
log('bad requests and what they were answered:');
for (const [name, outs] of badOutcomes) log(`   ${name}: ${[...outs].map(([o, n]) => `${o} ×${n}`).join(', ')}`);
if (Object.keys(final.health?.failures || {}).length) log(`health failures (exceptions caught at a boundary): ${JSON.stringify(final.health.failures)}`);
if (logKinds.size) {
  log('server log, warnings and errors by kind:');
  for (const [k, n] of [...logKinds].sort((a, b) => b[1] - a[1]).slice(0, 15)) log(`   ${String(n).padStart(5)}  ${k}`);
}
log(`server log: ${logFile}`);
log('');
for (const [name, ok, value] of checks) log(`${ok ? 'ok  ' : 'FAIL'}  ${name}: ${value}`);
const heapGrowth = final.heap?.in_use_mb - baseline.heap?.in_use_mb;
if (!checks[0][1] && heapGrowth < RSS_LIMIT_MB) {
  log(`note: the heap in use changed by ${fmt(heapGrowth)} MB: the RSS growth is memory malloc keeps after the churn's peaks, not live allocations`);
}
log(pass ? 'PASS' : 'FAIL');

if (JSON_FILE) {
  fs.writeFileSync(JSON_FILE, JSON.stringify({
    machine: machine(), date: new Date().toISOString(),
    options: { minutes: MINUTES, warmup_min: WARMUP_MIN, broadcasters: CASTERS, listeners: LISTENERS, sockets: SOCKETS, bad_rate: BAD_RATE },
    samples, start: startSample, baseline, final,
    totals: stats, errors: Object.fromEntries(errors), refusals: Object.fromEntries(refusals), load_generator_failures: Object.fromEntries(loadgenFailures), error_examples: Object.fromEntries(errorExamples), http_5xx: fiveXX,
    bad_requests: Object.fromEntries([...badOutcomes].map(([k, v]) => [k, Object.fromEntries(v)])),
    ended_by_server: Object.fromEntries(endReasons),
    sessions: { ...sessions, still_active: stillActive, end_reasons: reasons },
    recordings: { rows: rows.length, invalid: badRecordings, orphans },
    server_log_warnings: Object.fromEntries(logKinds), exit_code: exitCode, crashed,
    checks: checks.map(([name, ok, value]) => ({ name, ok, value })), pass,
  }, null, 1));
  log(`samples: ${JSON_FILE}`);
}
process.exit(pass ? 0 : 1);
