// ICE candidates every client can place: the server names the m-line of each of its candidates by sdpMid (the
// offer's a=mid) as well as sdpMLineIndex, for a broadcaster and for a listener, and takes a page's candidates that
// carry either. A client that places candidates by sdpMid alone (as some WebRTC stacks do) would otherwise drop
// every server candidate, and behind NAT or TURN never connect.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { requireTestNetwork } from '../support/browser.mjs';
import { twoFriends } from '../support/client.mjs';
import { offer } from '../support/sdp.mjs';
import { startServer } from '../support/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hostCandidate = 'candidate:1 1 udp 2122260223 10.203.0.9 9 typ host';

// Every server candidate that arrived on `sock` for `key` (session_id or listen_id) within `ms` after the answer.
async function serverCandidates(sock, key, value, ms = 1500) {
  await sleep(ms);
  return sock.messages.filter((m) => m.type === 'ice_candidate' && m[key] === value);
}

// A message that should be taken without a word: a ping after it is answered, and no error comes first.
async function taken(sock, msg) {
  for (const m of sock.messages) m.taken = true;
  sock.send(msg);
  sock.send({ type: 'ping' });
  const r = await sock.next((m) => m.type === 'error' || m.type === 'pong', 3000);
  return r.type === 'pong' ? null : r;
}

async function refused(sock, msg) {
  for (const m of sock.messages) m.taken = true;
  sock.send(msg);
  return sock.next((m) => m.type === 'error', 3000);
}

describe('ICE candidates name their m-line by sdpMid and sdpMLineIndex', () => {
  let server, alice, bob, asock, bsock, session;

  before(async () => {
    requireTestNetwork();
    server = await startServer({ env: { FC25_MEDIA_TIMEOUT_MS: '60000' } });
    ({ alice, bob } = await twoFriends(server.url));
    asock = alice.openPresence({ clientId: 'a-tab' });
    await asock.ready;
    const r = await alice.post('/api/stream/start', { client_id: 'a-tab' });
    assert.equal(r.status, 201);
    session = r.body.session_id;
    bsock = bob.openPresence();
    await bsock.ready;
  });
  after(async () => {
    bsock?.close();
    asock?.close();
    await server?.stop();
  });

  it("a broadcaster's: every server candidate carries the offer's mid; its own with sdpMid only are taken", async () => {
    asock.send({ type: 'webrtc_offer', session_id: session, sdp: offer({ mid: 'mic-a1' }) });
    const a = await asock.next((m) => m.type === 'webrtc_answer' || m.type === 'error', 5000);
    assert.equal(a.type, 'webrtc_answer', JSON.stringify(a));
    assert.match(a.sdp, /a=mid:mic-a1\r\n/);
    const cands = await serverCandidates(asock, 'session_id', session);
    assert.ok(cands.length >= 1, 'the server sent candidates');
    for (const c of cands) {
      assert.equal(c.sdpMid, 'mic-a1', JSON.stringify(c));
      assert.equal(c.sdpMLineIndex, 0, JSON.stringify(c));
    }

    const base = { type: 'ice_candidate', session_id: session, candidate: hostCandidate };
    assert.equal(await taken(asock, { ...base, sdpMid: 'mic-a1' }), null, 'sdpMid alone');
    assert.equal(await taken(asock, { ...base, sdpMLineIndex: 0 }), null, 'sdpMLineIndex alone');
    assert.equal(await taken(asock, { ...base, sdpMid: 'mic-a1', sdpMLineIndex: 0 }), null, 'both');
    assert.equal(await taken(asock, { ...base, sdpMid: 'elsewhere', sdpMLineIndex: 0 }), null,
      'an unknown sdpMid with a usable sdpMLineIndex');

    let e = await refused(asock, { ...base, sdpMid: 'elsewhere' });
    assert.equal(e.error.code, 'bad_message');
    assert.match(e.error.message, /field 'sdpMid' 'elsewhere' is not an a=mid of the offer \(it has 'mic-a1'\)/);
    e = await refused(asock, { ...base, sdpMid: 'elsewhere', sdpMLineIndex: 3 });
    assert.match(e.error.message, /'sdpMid' 'elsewhere'.*and field 'sdpMLineIndex' 3 is not an m-line of the offer \(it has 1\)/);
    e = await refused(asock, base);
    assert.equal(e.error.code, 'bad_message');
    assert.match(e.error.message, /needs 'sdpMid' .* or 'sdpMLineIndex'/);
    e = await refused(asock, { ...base, sdpMid: 7 });
    assert.match(e.error.message, /field 'sdpMid' must be a string/);
    const st = await alice.get('/api/stream/status');
    assert.equal(st.body.is_streaming, true, 'refused candidates leave the stream live');
  });

  it("a listener's: every server candidate carries the listener's mid; its own with sdpMid only are taken", async () => {
    bsock.send({ type: 'listen_offer', username: alice.username, sdp: offer({ direction: 'recvonly', mid: 'ear' }) });
    const a = await bsock.next((m) => m.type === 'listen_answer' || m.type === 'error', 5000);
    assert.equal(a.type, 'listen_answer', JSON.stringify(a));
    assert.match(a.sdp, /a=mid:ear\r\n/);
    const cands = await serverCandidates(bsock, 'listen_id', a.listen_id);
    assert.ok(cands.length >= 1, 'the server sent candidates');
    for (const c of cands) {
      assert.equal(c.sdpMid, 'ear', JSON.stringify(c));
      assert.equal(c.sdpMLineIndex, 0, JSON.stringify(c));
    }
    const base = { type: 'ice_candidate', listen_id: a.listen_id, candidate: hostCandidate };
    assert.equal(await taken(bsock, { ...base, sdpMid: 'ear' }), null, 'sdpMid alone');
    const e = await refused(bsock, { ...base, sdpMid: 'mic-a1' });
    assert.equal(e.error.code, 'bad_message');
    assert.match(e.error.message, /field 'sdpMid' 'mic-a1' is not an a=mid of the offer \(it has 'ear'\)/);
  });

  it('an offer whose audio has no a=mid is refused, naming it', async () => {
    bsock.send({ type: 'listen_offer', username: alice.username, sdp: offer({ direction: 'recvonly', mid: null }) });
    const e = await bsock.next((m) => m.type === 'error' || m.type === 'listen_answer', 5000);
    assert.equal(e.type, 'error', JSON.stringify(e));
    assert.equal(e.error.code, 'bad_offer');
    assert.match(e.error.message, /no a=mid/);
  });
});
