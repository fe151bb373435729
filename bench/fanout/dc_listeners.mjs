#!/usr/bin/env node
// Listener clients for the fan-out comparison: libdatachannel peers (npm node-datachannel) that receive one Opus
// track, from fc25 (listen_offer on the presence socket) or from Janus's Streaming plugin (watch), and count the
// decrypted RTP packets as they arrive. The same client for both servers, so that what differs is the server.
//
//   node bench/fanout/dc_listeners.mjs '<json>'
//     {"target": "fc25", "url", "users": [names], "password", "stream": "cast0",      (or)
//      "target": "janus", "api", "mountpoint": 1, "count",
//      "startAt": epoch ms, "joinEveryMs", "stopAt": epoch ms, "window": [from, to] epoch ms}
//
// Prints one JSON line when done: for every listener its packets, the gaps in its sequence numbers, how long from
// its offer to its first packet, or its error; and for every packet that arrived within the window (keyed by its
// payload, which both servers pass on unchanged) the first and last arrival time here and how many listeners got it.
import ndc from 'node-datachannel';

import { Client } from '../../tests/support/client.mjs';

const cfg = JSON.parse(process.argv[2]);
const debug = (...a) => { if (process.env.FC25_BENCH_DEBUG) console.error(...a); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const spread = new Map();  // payload key -> [first ms, last ms, listeners]
ndc.initLogger('Error', (level, message) => process.stderr.write(`libdatachannel ${level}: ${message}\n`));

// One listener's count of what it receives.
class Counter {
  constructor() {
    this.packets = 0;
    this.gaps = 0;
    this.last = -1;
    this.firstMs = null;
    this.offeredAt = 0;
    this.lateMs = 0;  // how far past its turn it joined
  }

  onPacket(buf) {
    if (buf.length < 12 || (buf[1] & 0x7f) < 96 || (buf[1] & 0x7f) > 127) return;  // RTP only, not RTCP
    const t = now();
    if (this.firstMs === null) this.firstMs = t - this.offeredAt;
    const seq = buf.readUInt16BE(2);
    if (this.last >= 0) {
      const step = (seq - this.last + 65536) % 65536;
      if (step === 0 || step > 32768) return;  // a repeat or a late one: already counted
      this.gaps += step - 1;
    }
    this.last = seq;
    this.packets += 1;
    if (t < cfg.window[0] || t > cfg.window[1]) return;
    const csrc = buf[0] & 0x0f;
    let at = 12 + 4 * csrc;
    if (buf[0] & 0x10 && buf.length >= at + 4) at += 4 + 4 * buf.readUInt16BE(at + 2);
    const payload = buf.subarray(at);
    const key = `${payload.length}:${payload.subarray(0, 12).toString('hex')}${payload.subarray(-4).toString('hex')}`;
    const s = spread.get(key);
    if (s) {
      s[1] = t;
      s[2] += 1;
    } else spread.set(key, [t, t, 1]);
  }
}

// A receive-only Opus peer that offers (fc25) or answers (Janus); resolves with its local description once its
// candidates are gathered.
function peer(name, counter) {
  const pc = new ndc.PeerConnection(name, { iceServers: [] });
  const gathered = new Promise((resolve) => pc.onGatheringStateChange((s) => { if (s === 'complete') resolve(); }));
  // Held by the counter: a track nothing in JavaScript refers to is collected, and its packets go unheard.
  const watch = (t) => {
    counter.track = t;
    t.onMessage((buf) => counter.onPacket(buf));
  };
  counter.pc = pc;
  pc.onTrack(watch);
  return { pc, gathered, watch };
}

async function fc25Listener(i, counter) {
  const client = new Client(cfg.url);
  const r = await client.login(cfg.users[i], cfg.password);
  if (r.status !== 200) throw new Error(`login ${cfg.users[i]}: ${r.status}`);
  const socket = client.openPresence();
  await socket.ready;
  await sleep(cfg.startAt + i * cfg.joinEveryMs - Date.now());
  counter.lateMs = Date.now() - (cfg.startAt + i * cfg.joinEveryMs);
  const { pc, watch } = peer(`l${i}`, counter);
  const audio = new ndc.Audio('0', 'RecvOnly');
  audio.addOpusCodec(111);
  watch(pc.addTrack(audio));
  const offer = new Promise((resolve) => pc.onLocalDescription((sdp) => resolve(sdp)));
  pc.setLocalDescription();
  counter.offeredAt = now();
  debug(`l${i}: offering`);
  socket.ws.send(JSON.stringify({ type: 'listen_offer', username: cfg.stream, sdp: await offer }));
  const answer = await socket.next((m) => m.type === 'listen_answer' || (m.type === 'error' && m.for === 'listen_offer'), 10000);
  if (answer.type === 'error') throw new Error(`${answer.code}: ${answer.message}`);
  debug(`l${i}: answered`);
  pc.setRemoteDescription(answer.sdp, 'answer');
  pc.onStateChange((st) => debug(`l${i}: ${st}`));
  return async () => {
    socket.ws.close();
    pc.close();
  };
}

async function janusListener(i, counter) {
  const { watchJanus } = await import('./janus.mjs');
  await sleep(cfg.startAt + i * cfg.joinEveryMs - Date.now());
  counter.lateMs = Date.now() - (cfg.startAt + i * cfg.joinEveryMs);
  const { pc, gathered } = peer(`l${i}`, counter);
  counter.offeredAt = now();
  const w = await watchJanus(cfg.api, cfg.mountpoint, async (sdp) => {
    pc.setRemoteDescription(sdp, 'offer');
    await gathered;
    return pc.localDescription().sdp;
  });
  return async () => {
    await w.stop().catch(() => {});
    pc.close();
  };
}

const count = cfg.target === 'fc25' ? cfg.users.length : cfg.count;
const counters = Array.from({ length: count }, () => new Counter());
const stops = [];
const results = await Promise.all(counters.map(async (c, i) => {
  try {
    stops.push(await (cfg.target === 'fc25' ? fc25Listener : janusListener)(i, c));
    return null;
  } catch (e) {
    return String(e.message || e);
  }
}));
await sleep(cfg.stopAt - Date.now());
debug(`window ${cfg.window} now ${now()} packets ${counters.map((c) => c.packets)} keys ${spread.size}`);
await Promise.all(stops.map((s) => s().catch(() => {})));
process.stdout.write(`${JSON.stringify({
  listeners: counters.map((c, i) => ({ error: results[i], packets: c.packets, gaps: c.gaps, first_ms: c.firstMs, late_ms: c.lateMs })),
  spread: [...spread].map(([key, [first, last, n]]) => [key, first, last, n]),
})}\n`);
ndc.cleanup();
process.exit(0);
