// Janus 1.1.2 (Debian package `janus`) for the fan-out comparison: a Janus process of our own with only the
// Streaming plugin and the HTTP transport, one Opus RTP mountpoint fed by gst-launch-1.0, and a viewer's side of
// the plain HTTP Janus API (create, attach, watch, start; events by long poll).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Debian installs Janus's modules under the machine's multiarch folder (x86_64-linux-gnu, aarch64-linux-gnu, ...).
const LIB = `/usr/lib/${execFileSync('dpkg-architecture', ['-qDEB_HOST_MULTIARCH'], { encoding: 'utf8' }).trim()}/janus`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Every shared object in a Janus folder but `keep`, as a `disable` list: Janus loads all of a folder by default.
const allBut = (folder, keep) => fs.readdirSync(`${LIB}/${folder}`).filter((f) => f.endsWith('.so') && f !== keep).join(',');

function writeConfig(dir, { rtpPort, httpPort, httpAddress, eventLoops, logFile }) {
  const log = logFile ? `log_to_stdout = false\n  log_to_file = "${logFile}"\n  debug_level = 4`
    : 'log_to_stdout = true\n  debug_level = 2';  // errors only, kept for a failure's message
  fs.writeFileSync(path.join(dir, 'janus.jcfg'), `general: {
  configs_folder = "${dir}"
  plugins_folder = "${LIB}/plugins"
  transports_folder = "${LIB}/transports"
  events_folder = "${LIB}/events"
  loggers_folder = "${LIB}/loggers"
  ${log}
  debug_timestamps = true
  debug_colors = false
  admin_secret = "${randomBytes(16).toString('hex')}"
  event_loops = ${eventLoops}
}
nat: { nice_debug = false full_trickle = false ice_lite = false }
plugins: { disable = "${allBut('plugins', 'libjanus_streaming.so')}" }
transports: { disable = "${allBut('transports', 'libjanus_http.so')}" }
loggers: { disable = "${allBut('loggers', '')}" }
events: { broadcast = false disable = "${allBut('events', '')}" }
`);
  fs.writeFileSync(path.join(dir, 'janus.transport.http.jcfg'), `general: {
  json = "compact"
  base_path = "/janus"
  http = true
  port = ${httpPort}
  ip = "${httpAddress}"
  https = false
}
admin: { admin_http = false admin_https = false }
`);
  fs.writeFileSync(path.join(dir, 'janus.plugin.streaming.jcfg'), `general: {
}
fc25-fanout: {
  type = "rtp"
  id = 1
  media = ({ type = "audio" mid = "a" port = ${rtpPort} iface = "127.0.0.1" pt = 111 codec = "opus" rtpmap = "opus/48000/2" })
}
`);
}

// Starts Janus with a fresh configuration folder; resolves once its HTTP API answers `info`.
export async function startJanus({ rtpPort, httpPort, httpAddress = '127.0.0.1', eventLoops = 2, logFile }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc25-janus-'));
  writeConfig(dir, { rtpPort, httpPort, httpAddress, eventLoops, logFile });
  // Run in the configuration folder, so that a core dump goes where stop() clears up.
  const proc = spawn('janus', [`--configs-folder=${dir}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d) => { out = (out + d).slice(-8000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let gone = false;
  const exited = new Promise((r) => proc.on('exit', () => { gone = true; r(); }));
  proc.on('error', (e) => { keep(`${e.message}\n`); gone = true; });  // not started at all
  const tail = () => {
    let t = out;
    try { if (logFile) t = fs.readFileSync(logFile, 'utf8').slice(-4000) + out; } catch { /* no log yet */ }
    return t.trim().split('\n').slice(-30).join('\n');
  };
  const api = `http://${httpAddress}:${httpPort}/janus`;
  const stop = async () => {
    if (!gone) {
      proc.kill('SIGTERM');
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 15000;
  for (;;) {
    const info = await fetch(`${api}/info`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json()).catch(() => null);
    if (info?.janus === 'server_info') return { proc, pid: proc.pid, api, stop };
    if (gone || Date.now() > end) {
      const why = gone ? `exited (${proc.exitCode ?? proc.signalCode})` : 'did not answer in 15 s';
      await stop();
      throw new Error(`janus ${why}:\n${tail()}`);
    }
    await sleep(100);
  }
}

// Opus RTP (pt 111, one 20 ms packet every 20 ms in real time) from pink noise to host:port; returns the process.
export function feedOpus({ host = '127.0.0.1', port, seconds = 3600 }) {
  return spawn('gst-launch-1.0', ['-q', 'audiotestsrc', 'is-live=true', 'wave=pink-noise', 'volume=0.05',
    'samplesperbuffer=480', `num-buffers=${seconds * 100}`, '!', 'audio/x-raw,rate=48000,channels=1', '!',
    'opusenc', 'frame-size=20', 'bitrate=64000', 'audio-type=voice', '!', 'rtpopuspay', 'pt=111', '!',
    'udpsink', `host=${host}`, `port=${port}`, 'sync=true'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

// One viewer of a Streaming mountpoint over the HTTP API: `answerOffer(offerSdp)` resolves to the answer SDP,
// candidates included. One long poll at a time runs until stop(); it also keeps the session alive.
export async function watchJanus(api, mountpointId, answerOffer) {
  const post = async (url, body) => {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, transaction: randomUUID() }) });
    const j = await r.json();
    if (j.janus === 'error') throw new Error(`janus ${body.janus}: ${j.error?.reason ?? JSON.stringify(j)}`);
    return j;
  };
  const session = (await post(api, { janus: 'create' })).data.id;
  const waiters = new Set();  // { match(event), resolve, reject }
  const trickled = [];  // Janus's own candidates, if it trickles them instead of putting them in its offer
  let handle = 0;
  let trickleDone = false;
  let stopped = false;
  const abort = new AbortController();
  const failAll = (e) => { for (const w of waiters) w.reject(e); waiters.clear(); };
  const deliver = (ev) => {
    if (ev.janus === 'trickle' && ev.sender === handle) {
      for (const c of [].concat(ev.candidate ?? ev.candidates ?? [])) {
        if (c.completed) trickleDone = true;
        else if (c.candidate) trickled.push(c.candidate.replace(/^a=/, ''));
      }
    }
    for (const w of waiters) if (w.match(ev)) { waiters.delete(w); w.resolve(ev); }
  };
  const poller = (async () => {
    while (!stopped) {
      let body;
      try {
        body = await (await fetch(`${api}/${session}?maxev=10`, { signal: abort.signal })).json();
      } catch {
        if (!stopped) await sleep(1000);  // Janus busy or restarting: one retry a second, never more
        continue;
      }
      for (const ev of [].concat(body)) {
        if (ev.janus === 'error' && !ev.sender) {  // the session is gone
          failAll(new Error(`janus: ${ev.error?.reason}`));
          return;
        }
        deliver(ev);
      }
    }
  })();
  // The next plugin event for our handle that passes `want` or carries an error; registered before the request.
  const expect = (want, what, ms = 15000) => {
    const p = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`janus: no ${what} in ${ms / 1000} s`)), ms);
      waiters.add({
        match: (ev) => ev.sender === handle && ev.janus === 'event' && (ev.plugindata?.data?.error || want(ev)),
        resolve: (ev) => { clearTimeout(timer); resolve(ev); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    }).then((ev) => {
      const d = ev.plugindata.data;
      if (d.error) throw new Error(`janus streaming: ${d.error} (${d.error_code})`);
      return ev;
    });
    p.catch(() => {});  // a request that failed first leaves this one unawaited
    return p;
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    abort.abort();
    failAll(new Error('janus: stopped'));
    await post(`${api}/${session}`, { janus: 'destroy' }).catch(() => {});
    await poller;
  };
  try {
    handle = (await post(`${api}/${session}`, { janus: 'attach', plugin: 'janus.plugin.streaming' })).data.id;
    const url = `${api}/${session}/${handle}`;
    const offered = expect((ev) => ev.jsep?.type === 'offer', 'offer');
    await post(url, { janus: 'message', body: { request: 'watch', id: mountpointId } });
    let sdp = (await offered).jsep.sdp;
    if (!/^a=candidate:/m.test(sdp)) sdp = await withTrickled(sdp, trickled, () => trickleDone);
    const answer = await answerOffer(sdp);
    const started = expect((ev) => /^start/.test(ev.plugindata?.data?.result?.status ?? ''), 'start');
    await post(url, { janus: 'message', body: { request: 'start' }, jsep: { type: 'answer', sdp: answer, trickle: false } });
    await started;
    return { session, handle, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// An offer without candidates (Janus doing full trickle) completed with those it trickles, which the long poll
// collects; waits up to 5 s for the end of them.
async function withTrickled(sdp, trickled, done) {
  for (let t = 0; t < 50 && !done(); t += 1) await sleep(100);
  if (!trickled.length) throw new Error('janus: its offer has no candidates and it trickled none');
  const lines = sdp.trimEnd().split(/\r?\n/);
  const m = lines.findIndex((l) => l.startsWith('m='));
  let at = lines.findIndex((l, i) => i > m && l.startsWith('m='));
  if (at < 0) at = lines.length;
  lines.splice(at, 0, ...trickled.map((c) => `a=${c}`), 'a=end-of-candidates');
  return `${lines.join('\r\n')}\r\n`;
}
