#!/usr/bin/env node
// Mouth-to-ear latency, measured from outside the server with the users' own pages: alice goes live in Chromium
// with speech from a fake microphone, bob (her friend) listens in another page of the same browser; both pages tap
// their audio with WebAudio (alice the microphone track she sends, bob the track he receives), and the lag that
// best lines up the two loudness envelopes is the latency. The same taps on two pages connected to each other
// directly (no server) give the floor. Modes: `direct`, `direct10` (the same, the answer asking for 10 ms
// packets), `off` (through fc25, noise removal off), `dfn3` (through fc25, DeepFilterNet3), and `pair-off`,
// `pair-dfn3`: the same through fc25 with a direct connection beside it in the same session (alice's page sends the
// same microphone track to bob's page too), so that what fc25 adds is read in each session against the direct
// path: the capture's and the pages' audio clocks are common to both and cancel (each connection's jitter buffer
// does not: the listening browser sizes each on its own). Each run is cut into windows; one lag per window.
//
// Per run it also prints how long the listening browser's jitter buffer held the audio (getStats: jitterBufferDelay
// over jitterBufferEmittedCount) and the server's own stamps (`media closed … latency/through`, `fanout closed … latency`) so
// the time inside the server can be told from the time in the browsers and the network.
//
//   scripts/netns-run.sh node bench/latency/run.mjs [--modes direct,off,dfn3,pair-dfn3] [--runs 3] [--seconds 15] [--json]
// The server's packing comes from the environment (FC25_PACKET_MS, FC25_LISTENER_OPUS), as for `fc25 serve`.
//
// Timestamps: each tap's audio blocks are placed on the page's clock by its AudioContext's own output timestamp
// (AudioContext.getOutputTimestamp), so the main thread's scheduling jitter does not enter; both pages use the
// same tap, so what the tap itself adds cancels out.
import { launchBrowser, requireTestNetwork } from '../../tests/support/browser.mjs';
import { Client, makeFriends, uniqueName } from '../../tests/support/client.mjs';
import { startServer, tempDir } from '../../tests/support/server.mjs';
import { enginePath, flag, machine, modelDir, opt, sleep, speechWav } from '../support.mjs';

const MODES = String(opt('modes', 'direct,off,dfn3')).split(',');
const RUNS = Number(opt('runs', 3));
const SECONDS = Number(opt('seconds', 15));
const WINDOW_S = 3;
const JSON_OUT = flag('json');
const log = (...a) => { if (!JSON_OUT) console.error(...a); };

// Runs in every page before its own scripts: taps the microphone (getUserMedia) and every received track.
const TAP = `(() => {
  const taps = { mic: [], recv: [] };
  window.__taps = taps;
  const keep = [];
  // The loudness of each of the node's \`channels\`, block by block, with the block's place on the page's clock: the
  // context's time mapped to performance time, then to wall time. The output goes to a silent sink.
  function tapNode(ctx, node, channels, into) {
    const sp = ctx.createScriptProcessor(256, channels, 1);
    const rms = (x) => { let s = 0; for (let i = 0; i < x.length; i++) s += x[i] * x[i]; return Math.sqrt(s / x.length); };
    sp.onaudioprocess = (ev) => {
      const ts = ctx.getOutputTimestamp();
      if (!ts.performanceTime) return;
      const at = performance.timeOrigin + ts.performanceTime + (ev.playbackTime - ts.contextTime) * 1000;
      const levels = [];
      for (let c = 0; c < channels; c++) levels.push(rms(ev.inputBuffer.getChannelData(c)));
      into.push([at, ...levels]);
    };
    const sink = ctx.createGain();
    sink.gain.value = 0;
    node.connect(sp);
    sp.connect(sink);
    sink.connect(ctx.destination);
    keep.push(ctx, node, sp, sink);
  }
  function tap(stream, into) {
    const ctx = new AudioContext({ sampleRate: 48000 });
    tapNode(ctx, ctx.createMediaStreamSource(stream), 1, into);
  }
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const s = await gum(c);
    tap(s, taps.mic);
    window.__micStream = s;
    return s;
  };
  // Two received tracks through one context, so that both are read at the same moments: each block gives the
  // loudness of each (the paired modes: the direct connection's track and fc25's).
  window.__tapPair = (a, b) => {
    taps.pair = [];
    const ctx = new AudioContext({ sampleRate: 48000 });
    const merge = ctx.createChannelMerger(2);
    ctx.createMediaStreamSource(a).connect(merge, 0, 0);
    ctx.createMediaStreamSource(b).connect(merge, 0, 1);
    tapNode(ctx, merge, 2, taps.pair);
  };
  const Native = window.RTCPeerConnection;
  const pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...a) {
      super(...a);
      pcs.push(this);
      this.addEventListener('track', (ev) => {
        const stream = ev.streams[0] || new MediaStream([ev.track]);
        // A connection marked direct (the paired modes' second one) is tapped apart from fc25's.
        if (this.direct) window.__directStream = stream;
        else window.__recvStream = stream;
        tap(stream, this.direct ? (taps.direct ??= []) : taps.recv);
      });
    }
  };
  // Resolves once the connection's candidates are all in its description (the direct mode does not trickle).
  window.__gathered = (pc) => new Promise((resolve) => {
    const done = () => pc.iceGatheringState === 'complete' && resolve();
    pc.addEventListener('icegatheringstatechange', done);
    done();
  });
  // How long the receiving side's jitter buffer held the audio it played, on average (ms).
  window.__jitterBufferMs = async (direct = false) => {
    for (const pc of pcs.filter((p) => !!p.direct === direct)) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.jitterBufferEmittedCount > 0) {
          return (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
        }
      }
    }
    return null;
  };
})();`;

// A connection of alice's page straight to bob's, no server: alice sends a microphone track (her own new one, or
// with `paired` the one her dashboard sends to fc25, both connections then marked direct), bob plays it. `packetMs`
// 10: bob's answer asks for 10 ms packets (a=ptime).
async function connectDirect(alice, bob, { packetMs = 20, paired = false } = {}) {
  const offer = await alice.evaluate(async (paired) => {
    const mic = paired ? window.__micStream : await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
    const pc = window.__directPc = new RTCPeerConnection();
    pc.direct = paired;
    mic.getAudioTracks().forEach((t) => pc.addTrack(t, mic));
    await pc.setLocalDescription(await pc.createOffer());
    await window.__gathered(pc);
    return pc.localDescription.sdp;
  }, paired);
  const answer = await bob.evaluate(async ({ offer, packetMs, paired }) => {
    const pc = window.__directPc = new RTCPeerConnection();
    pc.direct = paired;
    pc.ontrack = (e) => {
      const el = document.createElement('audio');
      el.srcObject = e.streams[0];
      document.body.append(el);
      el.play().catch(() => {});
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    await pc.setLocalDescription(await pc.createAnswer());
    await window.__gathered(pc);
    const sdp = pc.localDescription.sdp;
    return packetMs === 20 ? sdp : sdp.replace(/(a=rtpmap:\d+ opus\/48000\/2\r\n)/, `$1a=ptime:${packetMs}\r\n`);
  }, { offer, packetMs, paired });
  await alice.evaluate((sdp) => window.__directPc.setRemoteDescription({ type: 'answer', sdp }), answer);
  await bob.waitForFunction(() => window.__directPc.connectionState === 'connected', null, { timeout: 10000 });
}

// Two pages of the same browser, as alice and bob through the server are, connected to each other directly: alice's
// page sends her microphone, bob's plays it. `packetMs` 10: the answer asks for 10 ms packets (a=ptime), as fc25's
// does with FC25_PACKET_MS=10.
async function directRun(browser, url, packetMs = 20) {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const ctx = await browser.newContext();
    await ctx.addInitScript(TAP);
    const page = await ctx.newPage();
    await page.goto(url + '/login');
    pages.push({ ctx, page });
  }
  const [alice, bob] = pages.map((p) => p.page);
  await connectDirect(alice, bob, { packetMs });
  await sleep(SECONDS * 1000);
  const mic = await alice.evaluate(() => window.__taps.mic);
  const recv = await bob.evaluate(() => window.__taps.recv);
  const jitterBufferMs = await bob.evaluate(() => window.__jitterBufferMs());
  for (const p of pages) await p.ctx.close();
  return { mic, recv, stamps: null, jitterBufferMs };
}

async function userPage(browser, server, name) {
  const client = new Client(server.url);
  await client.register(name);
  const ctx = await browser.newContext();
  await ctx.addCookies([...client.cookies].map(([n, value]) => ({ name: n, value, domain: '127.0.0.1', path: '/' })));
  await ctx.addInitScript(TAP);
  return { name, client, ctx, page: await ctx.newPage() };
}

// The paired modes: alice's page also sends the same microphone track straight to bob's page, which plays both;
// the lag between the two received tracks, read together, is what fc25 adds in that session. Where each page's
// capture and playout ticks fall is common to both and cancels.
async function addDirectPair(alice, bob) {
  await connectDirect(alice, bob, { paired: true });
  await bob.waitForFunction(() => window.__directStream, null, { timeout: 10000 });
  await bob.evaluate(() => window.__tapPair(window.__directStream, window.__recvStream));
}

async function serverRun(browser, server, noiseRemoval, paired = false) {
  const alice = await userPage(browser, server, uniqueName('alice'));
  const bob = await userPage(browser, server, uniqueName('bob'));
  await makeFriends(alice.client, bob.client);
  const logFrom = server.logs().length;
  await alice.page.goto(server.url + '/');
  if (!noiseRemoval) {
    // "Noise removal off" is the server path without a denoiser (the API's noise_removal: false); the page's Off
    // strength still runs the model, at 0 dB, so that it can be turned up while live.
    await alice.page.route('**/api/stream/start', (route) => {
      const body = { ...JSON.parse(route.request().postData()), noise_removal: false };
      delete body.strength;
      route.continue({ postData: JSON.stringify(body) });
    });
  }
  await alice.page.click('[data-testid=go-live]');
  await alice.page.waitForFunction(() => document.body.dataset.mediaState === 'connected', null, { timeout: 10000 });
  await bob.page.goto(`${server.url}/u/${alice.name}`);
  await bob.page.click('[data-testid=listen]');
  await bob.page.waitForFunction(() => document.body.dataset.listenState === 'connected', null, { timeout: 10000 });
  if (paired) await addDirectPair(alice.page, bob.page);
  await sleep(SECONDS * 1000);
  const mic = await alice.page.evaluate(() => window.__taps.mic);
  const recv = await bob.page.evaluate(() => window.__taps.recv);
  const jitterBufferMs = await bob.page.evaluate(() => window.__jitterBufferMs());
  const pair = paired ? {
    direct: await bob.page.evaluate(() => window.__taps.direct),
    both: await bob.page.evaluate(() => window.__taps.pair),
    directJitterBufferMs: await bob.page.evaluate(() => window.__jitterBufferMs(true)),
  } : null;
  await alice.page.click('[data-testid=stop]');
  const t0 = Date.now();
  while (!/fanout closed/.test(server.logs().slice(logFrom)) && Date.now() - t0 < 5000) await sleep(50);
  await sleep(300);
  const logs = server.logs().slice(logFrom);
  const num = (re) => { const m = logs.match(re); return m ? Number(m[1]) : null; };
  const stamps = {
    denoise_wait_p50_ms: num(/media closed .*?latency p50=([\d.]+)ms/),
    through_p50_ms: num(/media closed .*?through_p50=([\d.]+)ms/),
    fanout_p50_ms: num(/fanout closed .*?latency p50=([\d.]+)ms/),
  };
  await alice.ctx.close();
  await bob.ctx.close();
  return { mic, recv, stamps, jitterBufferMs, pair };
}

// Envelopes on a 1 ms grid (linear between blocks), then the lag in [minLag, 400) ms that maximises their
// correlation in each window, refined to a fraction of a millisecond by a parabola through the peak.
function lags(mic, recv, minLag = 0) {
  const grid = (pts, from, n) => {
    const out = new Float64Array(n);
    let j = 0;
    for (let i = 0; i < n; i++) {
      const t = from + i;
      while (j + 1 < pts.length && pts[j + 1][0] <= t) j++;
      if (j + 1 >= pts.length) { out[i] = pts[j][1]; continue; }
      const [t0, v0] = pts[j], [t1, v1] = pts[j + 1];
      out[i] = t <= t0 ? v0 : v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
    }
    return out;
  };
  if (mic.length < 100 || recv.length < 100) return [];
  const span = 400 - minLag;
  const start = Math.max(mic[0][0] - minLag, recv[0][0] - 400) + 1000, end = Math.min(mic.at(-1)[0], recv.at(-1)[0] - 400);
  const out = [];
  for (let w0 = start; w0 + WINDOW_S * 1000 <= end; w0 += WINDOW_S * 1000) {
    const n = WINDOW_S * 1000;
    const a = grid(mic, w0, n), b = grid(recv, w0 + minLag, n + span);
    const mean = (v, k) => { let s = 0; for (let i = 0; i < k; i++) s += v[i]; return s / k; };
    const ma = mean(a, n);
    const score = new Float64Array(span);
    for (let k = 0; k < span; k++) {
      let dot = 0, aa = 0, bb = 0, mb = 0;
      for (let i = 0; i < n; i++) mb += b[i + k];
      mb /= n;
      for (let i = 0; i < n; i++) {
        const x = a[i] - ma, y = b[i + k] - mb;
        dot += x * y; aa += x * x; bb += y * y;
      }
      score[k] = dot / Math.sqrt(aa * bb || 1);
    }
    let best = 0;
    for (let k = 1; k < span; k++) if (score[k] > score[best]) best = k;
    if (score[best] < 0.5) continue;  // silence or no match in this window
    let frac = 0;
    if (best > 0 && best < span - 1) {
      const [l, c, r] = [score[best - 1], score[best], score[best + 1]];
      const d = l - 2 * c + r;
      if (d < 0) frac = (0.5 * (l - r)) / d;
    }
    out.push(minLag + best + frac);
  }
  return out;
}

const median = (v) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };

requireTestNetwork();
const results = [];
const browser = await launchBrowser({ audioFile: speechWav, args: ['--autoplay-policy=no-user-gesture-required'] });
const server = await startServer({ dataDir: tempDir('fc25-bench-latency-'), env: { FC25_MODEL_DIR: modelDir } });
const engine = enginePath(server);
try {
  for (let run = 0; run < RUNS; run++) {
    for (const mode of MODES) {
      const r = mode === 'direct' ? await directRun(browser, server.url)
        : mode === 'direct10' ? await directRun(browser, server.url, 10)
          : await serverRun(browser, server, mode.endsWith('dfn3'), mode.startsWith('pair-'));
      const l = lags(r.mic, r.recv);
      const entry = { mode, run: run + 1, windows: l.length, lag_p50_ms: median(l), lags_ms: l.map((x) => +x.toFixed(1)),
        listener_jitter_buffer_ms: r.jitterBufferMs, stamps: r.stamps };
      if (r.pair) {
        const d = lags(r.mic, r.pair.direct);
        const added = lags(r.pair.both.map(([t, a]) => [t, a]), r.pair.both.map(([t, , b]) => [t, b]), -100);
        Object.assign(entry, { direct_lag_p50_ms: median(d), direct_jitter_buffer_ms: r.pair.directJitterBufferMs,
          added_p50_ms: median(added), added_ms: added.map((x) => +x.toFixed(1)) });
      }
      results.push(entry);
      log(`${mode} run ${run + 1}: mouth-to-ear p50 ${entry.lag_p50_ms?.toFixed(1)} ms over ${l.length} windows, ` +
        `listener's jitter buffer ${entry.listener_jitter_buffer_ms?.toFixed(1)} ms` +
        (r.pair ? `; the direct connection beside it ${entry.direct_lag_p50_ms?.toFixed(1)} ms (jitter buffer ` +
          `${entry.direct_jitter_buffer_ms?.toFixed(1)} ms); fc25 later than direct by ${entry.added_p50_ms?.toFixed(1)} ms ` +
          `(windows: ${entry.added_ms.join(', ')})` : '') +
        (r.stamps ? `; server: denoise wait p50 ${r.stamps.denoise_wait_p50_ms} ms, packet to clean audio p50 ` +
          `${r.stamps.through_p50_ms} ms, packet to listener's payloader p50 ${r.stamps.fanout_p50_ms} ms` : ''));
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
const summary = {};
for (const mode of MODES) {
  const per = results.filter((r) => r.mode === mode && r.lag_p50_ms !== null).map((r) => r.lag_p50_ms);
  summary[mode] = { p50_ms: median(per), spread_ms: per.length ? Math.max(...per) - Math.min(...per) : null, runs: per.length };
  const added = results.filter((r) => r.mode === mode && r.added_p50_ms != null).map((r) => r.added_p50_ms);
  if (added.length) {
    summary[mode].paired_added_p50_ms = median(added);
    summary[mode].paired_added_spread_ms = Math.max(...added) - Math.min(...added);
  }
}
for (const mode of MODES) {
  if (mode.startsWith('direct') || summary[mode].p50_ms == null) continue;
  if (summary.direct?.p50_ms != null) summary[mode].added_ms = summary[mode].p50_ms - summary.direct.p50_ms;
  if (summary.direct10?.p50_ms != null) summary[mode].added_over_direct10_ms = summary[mode].p50_ms - summary.direct10.p50_ms;
}
// The server's packing (FC25_PACKET_MS, FC25_LISTENER_OPUS), from its configuration line.
const [, packetMs = '?', listenerOpus = '?'] = /packet_ms=(\S+) listener_opus=(\S+)/.exec(server.logs()) ?? [];
const packing = `packets ${packetMs === 'auto' ? 'auto (10 ms for one stream)' : `${packetMs} ms`}, listeners' encoder ${listenerOpus}`;
if (JSON_OUT) console.log(JSON.stringify({ machine: machine(), engine, packing, seconds: SECONDS, summary, results }, null, 1));
else {
  for (const [mode, s] of Object.entries(summary)) {
    log(`${mode}: p50 of the runs ${s.p50_ms?.toFixed(1)} ms, spread between runs ${s.spread_ms?.toFixed(1)} ms` +
      (s.added_ms != null ? `, added over direct ${s.added_ms.toFixed(1)} ms` : '') +
      (s.added_over_direct10_ms != null ? `, over direct10 ${s.added_over_direct10_ms.toFixed(1)} ms` : '') +
      (s.paired_added_p50_ms != null ? `; later than the direct connection beside it by ${s.paired_added_p50_ms.toFixed(1)} ms ` +
        `(p50 of the runs), spread between runs ${s.paired_added_spread_ms.toFixed(1)} ms` : ''));
  }
  log(`machine: ${machine()}; denoise engine: ${engine}; ${packing}`);
}
