// WebRTC signalling on the presence socket, refused: every bad offer or misdirected message gets an error that
// says what is wrong, and leaves no media pipeline behind (GET /api/health counts them).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { requireTestNetwork } from '../support/browser.mjs';
import { Client, twoFriends, uniqueName } from '../support/client.mjs';
import { offer } from '../support/sdp.mjs';
import { startServer } from '../support/server.mjs';

// A server of its own, and alice on it with her dashboard's presence socket open as tab `clientId`.
async function serverWithAliceOnline(clientId) {
  requireTestNetwork();
  const server = await startServer({ env: { FC25_MEDIA_TIMEOUT_MS: '60000' } });
  const alice = new Client(server.url);
  await alice.register(uniqueName('alice'));
  const sock = alice.openPresence({ clientId });
  await sock.ready;
  return { server, alice, sock };
}

describe('signalling refused', () => {
  let server, alice, sock, session;
  const health = async () => (await (await fetch(server.url + '/api/health')).json());
  const clientId = uniqueName('tab');
  const ask = async (msg, s = sock) => {
    s.send(msg);
    return s.next((m) => m.type === 'error' || m.type === 'webrtc_answer', 5000);
  };

  before(async () => {
    ({ server, alice, sock } = await serverWithAliceOnline(clientId));
    const r = await alice.post('/api/stream/start', { client_id: clientId });
    assert.equal(r.status, 201);
    session = r.body.session_id;
  });
  after(async () => { await server?.stop(); });

  const cases = [
    ['garbage', 'this is not an SDP', /not SDP/],
    ['empty', '', /empty/],
    ['truncated', offer().slice(0, 60), /no audio section|not valid SDP/],
    ['video only', offer({ media: 'video', codecs: [[96, 'VP8/90000']] }), /no audio section/],
    ['no Opus', offer({ codecs: [[0, 'PCMU/8000'], [8, 'PCMA/8000']] }), /does not include Opus.*PCMU\/8000, PCMA\/8000/],
    ['receive-only', offer({ direction: 'recvonly' }), /does not send/],
    ['no ICE credentials', offer({ ice: false }), /no ICE credentials/],
    ['no DTLS fingerprint', offer({ fingerprint: false }), /no DTLS fingerprint/],
  ];
  for (const [what, sdp, re] of cases) {
    it(`an offer that is ${what}: bad_offer, nothing created`, async () => {
      const e = await ask({ type: 'webrtc_offer', session_id: session, sdp });
      assert.equal(e.type, 'error');
      assert.equal(e.error.code, 'bad_offer');
      assert.match(e.error.message, re);
      assert.equal(e.for, 'webrtc_offer');
      assert.equal(e.session_id, session);
      assert.equal((await health()).media_pipelines, 0);
    });
  }

  it('malformed messages and fields are named', async () => {
    sock.send('{"type": "webrtc_offer", ');
    let e = await sock.next((m) => m.type === 'error');
    assert.equal(e.error.code, 'bad_message');
    assert.match(e.error.message, /malformed JSON/);
    e = await ask({ type: 'webrtc_offer', sdp: offer() });
    assert.match(e.error.message, /session_id/);
    e = await ask({ type: 'webrtc_offer', session_id: session, sdp: 42 });
    assert.match(e.error.message, /'sdp'.*string/);
    e = await ask({ type: 'webrtc_dance', session_id: session });
    assert.match(e.error.message, /unknown message type 'webrtc_dance'/);
    assert.equal((await health()).media_pipelines, 0);
  });

  it("someone else's session, or one's own from another tab: refused", async () => {
    const bob = new Client(server.url);
    await bob.register(uniqueName('bob'));
    const bsock = bob.openPresence();
    await bsock.ready;
    let e = await ask({ type: 'webrtc_offer', session_id: session, sdp: offer() }, bsock);
    assert.equal(e.error.code, 'not_your_session');
    e = await ask({ type: 'ice_candidate', session_id: session, candidate: 'candidate:1 1 UDP 1 10.203.0.9 9 typ host' }, bsock);
    assert.equal(e.error.code, 'not_your_session');
    const other = alice.openPresence();  // alice's second tab
    await other.ready;
    e = await ask({ type: 'webrtc_offer', session_id: session, sdp: offer() }, other);
    assert.equal(e.error.code, 'other_tab');
    assert.equal((await health()).media_pipelines, 0);
    bsock.close();
    other.close();
  });

  it('a second offer for a stream replaces its ingest (the page reconnecting); going live from another tab is refused', async () => {
    const a = await ask({ type: 'webrtc_offer', session_id: session, sdp: offer() });
    assert.equal(a.type, 'webrtc_answer', JSON.stringify(a));
    assert.match(a.sdp, /a=rtpmap:111 OPUS\/48000/i);
    assert.match(a.sdp, /a=recvonly/);
    assert.equal((await health()).media_pipelines, 1);
    const again = await ask({ type: 'webrtc_offer', session_id: session, sdp: offer() });
    assert.equal(again.type, 'webrtc_answer', JSON.stringify(again));
    const until = Date.now() + 3000;
    while ((await health()).media_pipelines !== 1 && Date.now() < until) await new Promise((r2) => setTimeout(r2, 50));
    assert.equal((await health()).media_pipelines, 1, 'the replaced ingest is let go');
    assert.equal((await alice.get('/api/me')).body.session_id, session, 'the same session');
    const r = await alice.post('/api/stream/start', { client_id: uniqueName('tab') });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'already_streaming');
    assert.equal((await health()).media_pipelines, 1);
    // Ending the stream releases its pipeline.
    await alice.post('/api/stream/stop', { session_id: session });
    const end = Date.now() + 3000;
    while ((await health()).media_pipelines !== 0 && Date.now() < end) await new Promise((r2) => setTimeout(r2, 50));
    assert.equal((await health()).media_pipelines, 0);
    const late = await ask({ type: 'webrtc_offer', session_id: session, sdp: offer() });
    assert.equal(late.error.code, 'not_your_session', 'an ended session takes no offer');
  });

  it('bad options for going live are named', async () => {
    const c = new Client(server.url);
    await c.register(uniqueName('carol'));
    let r = await c.post('/api/stream/start', { client_id: 'x1', atten_lim_db: 500 });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /atten_lim_db/);
    r = await c.post('/api/stream/start', { client_id: 'x1', noise_removal: 'yes' });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /noise_removal/);
    r = await c.post('/api/stream/start', { client_id: 'x1', strength: 'loud' });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /'strength' must be one of off, light, balanced, full/);
    r = await c.post('/api/stream/start', { client_id: 'x1', strength: 'light', atten_lim_db: 6 });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /'strength' or 'atten_lim_db', not both/);
    assert.equal((await health()).live_streams, 0);
  });

  it('the strength of a live stream: only its tab changes it, to a preset, and not when noise removal is off', async () => {
    const tab = uniqueName('tab');
    const c = new Client(server.url);
    await c.register(uniqueName('dave'));
    const own = c.openPresence({ clientId: tab });
    await own.ready;
    const ask2 = async (msg, s) => {
      s.send(msg);
      return s.next((m) => m.type === 'error' || m.type === 'strength_set', 5000);
    };
    let r = await c.post('/api/stream/start', { client_id: tab, strength: 'balanced' });
    assert.equal(r.status, 201);
    assert.equal(r.body.strength, 'balanced');
    const id = r.body.session_id;
    let m = await ask2({ type: 'set_strength', session_id: id, strength: 'light' }, own);
    assert.deepEqual({ type: m.type, session_id: m.session_id, strength: m.strength, atten_lim_db: m.atten_lim_db },
      { type: 'strength_set', session_id: id, strength: 'light', atten_lim_db: 12 });
    m = await ask2({ type: 'set_strength', session_id: id, strength: 'max' }, own);
    assert.equal(m.type, 'error');
    assert.equal(m.for, 'set_strength');
    assert.match(m.error.message, /one of off, light, balanced, full, not 'max'/);
    const other = c.openPresence();  // another tab of the same user
    await other.ready;
    m = await ask2({ type: 'set_strength', session_id: id, strength: 'off' }, other);
    assert.equal(m.error.code, 'other_tab');
    other.close();
    await c.post('/api/stream/stop', { session_id: id });
    m = await ask2({ type: 'set_strength', session_id: id, strength: 'off' }, own);
    assert.equal(m.error.code, 'not_your_session', 'an ended stream has no strength to change');
    r = await c.post('/api/stream/start', { client_id: tab, noise_removal: false });
    m = await ask2({ type: 'set_strength', session_id: r.body.session_id, strength: 'full' }, own);
    assert.equal(m.error.code, 'noise_removal_off');
    assert.match(m.error.message, /noise removal off/);
    await c.post('/api/stream/stop', { session_id: r.body.session_id });
    own.close();
  });
});

describe('listening, when things are not simple', () => {
  let server;
  before(async () => {
    requireTestNetwork();
    server = await startServer({ env: { FC25_MEDIA_TIMEOUT_MS: '90000' } });
  });
  after(async () => { await server?.stop(); });

  it('a listener the server cannot reach: its connection fails, it is told why, everything it held is released', async () => {
    const health = async () => (await (await fetch(server.url + '/api/health')).json());
    const { alice, bob } = await twoFriends(server.url);
    const asock = alice.openPresence({ clientId: 'a-tab' });
    await asock.ready;
    assert.equal((await alice.post('/api/stream/start', { client_id: 'a-tab' })).status, 201);
    const bsock = bob.openPresence();
    await bsock.ready;
    // Its only candidate is a port where nothing answers.
    bsock.send({ type: 'listen_offer', username: alice.username,
      sdp: offer({ direction: 'recvonly', candidates: ['candidate:1 1 udp 2122260223 10.203.0.2 9 typ host'] }) });
    const answer = await bsock.next((m) => m.type === 'listen_answer' || m.type === 'error', 5000);
    assert.equal(answer.type, 'listen_answer', JSON.stringify(answer));
    assert.equal((await asock.next((m) => m.type === 'listeners', 5000)).count, 1);
    // The stream's encoder and the listener's connection (its own pipeline, or one on the shared transport).
    const held = async () => { const h = await health(); return h.media_pipelines + h.listener_connections; };
    const during = await held();
    assert.ok(during >= 2);
    const ended = await bsock.next((m) => m.type === 'listen_ended', 60000);
    assert.equal(ended.listen_id, answer.listen_id);
    assert.equal(ended.reason, 'failed');
    assert.match(ended.detail, /ICE|connection|failed/i);
    assert.equal((await asock.next((m) => m.type === 'listeners' && m.count === 0, 5000)).count, 0);
    const end = Date.now() + 3000;
    while (await held() !== during - 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await held(), during - 1, 'what the listener held is gone');
    assert.equal((await health()).live_streams, 1, 'the stream itself goes on');
    bsock.close();
    asock.close();
  });

  // A friend's page may ask to listen the moment the stream's row exists (a snapshot taken then), before this
  // process has opened its media: that is "starting" (ask again), never "not_here" (another process serves it).
  it('offers racing a start are answered not_live, then starting, then listen_answer; never not_here', async () => {
    const { alice, bob } = await twoFriends(server.url);
    const bsock = bob.openPresence();
    await bsock.ready;
    const sdp = offer({ direction: 'recvonly' });
    const codes = [];
    let going = null;
    for (let i = 0; i < 20000; i++) {
      bsock.send({ type: 'listen_offer', username: alice.username, sdp });
      const m = await bsock.next((x) => x.type === 'listen_answer' || (x.type === 'error' && x.for === 'listen_offer'), 5000);
      const code = m.type === 'listen_answer' ? 'listen_answer' : m.error.code;
      if (codes.at(-1) !== code) codes.push(code);
      if (code === 'listen_answer') break;
      if (i === 3) going = alice.post('/api/stream/start', { client_id: 'a-tab' });
    }
    assert.equal((await going).status, 201);
    assert.ok(!codes.includes('not_here'), `answers in order: ${codes.join(', ')}`);
    assert.deepEqual(codes.filter((c) => c !== 'starting'), ['not_live', 'listen_answer'], codes.join(', '));
    bsock.close();
  });
});

// Offers that look right at a glance but that webrtcbin cannot take: the check must refuse them (bad_offer) before
// anything is created, because a pipeline that fails on them ends the stream (webrtc_failed).
describe('offers broken in their details: refused, the stream stays live', () => {
  let server, alice, sock, session;
  const clientId = uniqueName('tab');
  const health = async () => (await (await fetch(server.url + '/api/health')).json());

  before(async () => {
    ({ server, alice, sock } = await serverWithAliceOnline(clientId));
  });
  after(async () => { await server?.stop(); });

  const good = offer();
  const cases = [
    ['a payload type that is not a number', good.replace('a=rtpmap:111 ', 'a=rtpmap:abc ').replace(' SAVPF 111', ' SAVPF abc'), /payload type 'abc'/],
    ['an rtpmap payload type that is not a number', good.replace('a=rtpmap:111 ', 'a=rtpmap:abc '), /payload type 'abc'/],
    ['payload type 99999', good.replace('a=rtpmap:111 ', 'a=rtpmap:99999 ').replace(' SAVPF 111', ' SAVPF 99999'), /payload type '99999'.*0-127/],
    ['an Opus rtpmap for a payload type the m-line does not list', good.replace('a=rtpmap:111 ', 'a=rtpmap:112 '), /112.*not listed/],
    ['fingerprint "zz"', good.replace(/a=fingerprint:.*\r\n/, 'a=fingerprint:zz\r\n'), /fingerprint/],
    ['a fingerprint of bad hex', good.replace(/a=fingerprint:sha-256 ..:/, 'a=fingerprint:sha-256 ZQ:'), /fingerprint/],
    ['a fingerprint too short for its hash', good.replace(/a=fingerprint:sha-256 (.*)\r\n/, 'a=fingerprint:sha-256 AB:CD\r\n'), /fingerprint.*32 bytes/],
    ['an unknown fingerprint hash', good.replace('a=fingerprint:sha-256 ', 'a=fingerprint:whirlpool '), /fingerprint/],
    ['setup:bogus', good.replace('a=setup:actpass', 'a=setup:bogus'), /setup/],
    ['no ICE password', good.replace(/a=ice-pwd:.*\r\n/, ''), /ice-pwd/],
  ];
  for (const [what, sdp, re] of cases) {
    it(`${what}: bad_offer, and the stream goes on`, async () => {
      // A fresh stream each time, with no media connection yet.
      await alice.post('/api/stream/stop', {});
      const r = await alice.post('/api/stream/start', { client_id: clientId });
      assert.equal(r.status, 201);
      session = r.body.session_id;
      await sock.next((m) => m.type === 'streaming_status' && m.session_id === session && m.is_streaming, 3000);
      for (const m of sock.messages) m.taken = true;  // only what answers this offer counts
      sock.send({ type: 'webrtc_offer', session_id: session, sdp });
      const e = await sock.next((m) => m.type === 'error' || m.type === 'webrtc_answer' ||
        (m.type === 'streaming_status' && m.session_id === session && m.is_streaming === false), 5000);
      assert.equal(e.type, 'error', `the offer was taken: ${JSON.stringify(e)}`);
      assert.equal(e.error.code, 'bad_offer');
      assert.match(e.error.message, re);
      // Had a pipeline been made for it, it would fail now and end the stream.
      await new Promise((r) => setTimeout(r, 700));
      const now = await alice.get('/api/stream/status');
      assert.equal(now.body.is_streaming, true, 'the stream is still live');
      assert.equal(now.body.session_id, session);
      assert.equal((await health()).media_pipelines, 0);
    });
  }

  it('an ICE candidate with sdpMLineIndex 2^40, or not an integer: refused, naming the field', async () => {
    const st = await alice.get('/api/stream/status');
    if (!st.body.is_streaming) {
      const r = await alice.post('/api/stream/start', { client_id: clientId });
      session = r.body.session_id;
    }
    for (const bad of [2 ** 40, -(2 ** 40), 1.5, '0', 2 ** 32]) {
      sock.send({ type: 'ice_candidate', session_id: session, candidate: 'candidate:1 1 UDP 1 10.203.0.9 9 typ host', sdpMLineIndex: bad });
      const e = await sock.next((m) => m.type === 'error', 3000);
      assert.equal(e.error.code, 'bad_message', JSON.stringify(bad));
      assert.match(e.error.message, /field 'sdpMLineIndex' must be an integer 0-16/, JSON.stringify(bad));
    }
  });
});
