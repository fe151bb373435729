// Listening to a friend's live stream (or to one's own microphone test): a receive-only RTCPeerConnection
// signalled on the presence socket; the remote track plays in an <audio> element. A level meter (AnalyserNode on
// the remote track) shows that sound arrives. Nothing starts before the user presses Listen.

import { startLevelMeter } from '/static/common/level_meter.js';

let current = null;  // { listenId, pc, audio, meter, onEnded }
const retired = new Set();  // listening ids this page replaced: what the server says of them is old news

export function listening() { return current !== null; }

// Starts listening to `username`'s stream. `send(msg)` writes to the presence socket. `offer`: what names the
// stream in the offer (default { username }; a microphone test: { test_id }).
export async function startListening(username, options) {
  const { send, audio, meterElement, iceServers, onEnded, offer: names } = options;
  stopListening();
  const pc = new RTCPeerConnection({ iceServers: iceServers || [] });
  current = { listenId: null, username, pc, audio, meter: null, onEnded, pendingOut: [], pendingIn: [], options,
    retry: null };
  const me = current;
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (ev) => {
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    audio.srcObject = stream;
    audio.play().catch(() => {});
    if (meterElement) me.meter = startLevelMeter(stream, meterElement);
  };
  pc.onicecandidate = (ev) => {
    if (!ev.candidate || !ev.candidate.candidate) return;
    // Its m-line by both names: the server takes either.
    const c = { candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex };
    if (me.listenId) send({ type: 'ice_candidate', listen_id: me.listenId, ...c });
    else me.pendingOut.push(c);
  };
  pc.onconnectionstatechange = () => {
    if (current !== me) return;
    document.body.dataset.listenState = pc.connectionState;
    clearTimeout(me.retry);
    // A network blip: the connection may come back by itself; if it has not after a few seconds (or failed), the
    // page listens again (the server says so if the stream has ended meanwhile).
    if (pc.connectionState === 'disconnected') me.retry = setTimeout(() => relisten(me), 3000);
    else if (pc.connectionState === 'failed') relisten(me);
    else if (pc.connectionState === 'connected') me.options.relistens = 0;
  };
  me.send = send;
  me.names = names || { username };
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  send({ type: 'listen_offer', ...me.names, sdp: pc.localDescription.sdp });
}

function relisten(me) {
  if (current !== me) return;
  if ((me.options.relistens = (me.options.relistens || 0) + 1) > 20) {
    stopListening(me.send);
    me.onEnded('The audio connection failed. Press Listen to try again.');
    return;
  }
  document.body.dataset.listenReconnects = String(Number(document.body.dataset.listenReconnects || 0) + 1);
  if (me.listenId) {
    retired.add(me.listenId);
    me.send({ type: 'listen_stop', listen_id: me.listenId });
  }
  startListening(me.username, me.options).catch((e) => me.onEnded(`Cannot listen again: ${e.message}`));
}

// The presence socket is back: the server lets go of a page's listening when its socket closes, so it listens
// again, on the new socket.
export function reconnectListening() {
  const me = current;
  if (me) relisten(me);
}

// Messages from the server about our listening. Returns true when handled.
export function handleListenMessage(msg) {
  if (!current) return false;
  const me = current;
  if (msg.type === 'listen_answer' && msg.username === me.username && !me.listenId) {
    me.listenId = msg.listen_id;
    for (const c of me.pendingOut) me.send({ type: 'ice_candidate', listen_id: me.listenId, ...c });
    me.pendingOut = [];
    me.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp }).then(async () => {
      for (const c of me.pendingIn) await me.pc.addIceCandidate(c).catch(() => {});
      me.pendingIn = [];
    }).catch((e) => me.onEnded(`The server's answer could not be used: ${e.message}`));
    return true;
  }
  if (msg.type === 'ice_candidate' && msg.listen_id && msg.listen_id === me.listenId) {
    const c = { candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex };
    if (me.pc.remoteDescription) me.pc.addIceCandidate(c).catch(() => {});
    else me.pendingIn.push(c);
    return true;
  }
  if (msg.type === 'listen_ended' && retired.has(msg.listen_id)) return true;
  // (It may end before its answer came: a friendship removed while the offer was being taken.)
  if (msg.type === 'listen_ended' && (msg.listen_id === me.listenId || (!me.listenId && msg.username === me.username))) {
    stopListening();
    me.onEnded({
      left: '',
      failed: `The connection to the stream failed (${msg.detail}). Press Listen to try again.`,
      not_friends: `You are no longer friends with ${me.username}.`,
      node_lost: 'The stream ended: the server carrying it stopped answering.',
      relay_lost: `The server carrying the stream of ${me.username} cannot be reached. Press Listen to try again.`,
    }[msg.reason] ?? 'The stream ended.');
    return true;
  }
  if (msg.type === 'error' && msg.for === 'listen_offer') {
    // The stream went live a moment ago and its media is still opening: ask again (for up to 5 s).
    if (msg.error?.code === 'starting' && (me.retries = (me.retries || 0) + 1) <= 25) {
      setTimeout(() => {
        if (current === me) me.send({ type: 'listen_offer', ...me.names, sdp: me.pc.localDescription.sdp });
      }, 200);
      return true;
    }
    stopListening();
    me.onEnded(msg.error?.message || 'The server refused.');
    return true;
  }
  return false;
}

// Stops listening and releases everything. With `send`, tells the server (it also notices a closed socket).
export function stopListening(send) {
  if (!current) return;
  const { pc, audio, meter, listenId, retry } = current;
  current = null;
  clearTimeout(retry);
  if (send && listenId) send({ type: 'listen_stop', listen_id: listenId });
  try { pc.close(); } catch { /* closed */ }
  audio.srcObject = null;
  if (meter) meter.stop();
  delete document.body.dataset.listenState;
}

// What the connection has received (for the page's status and for tests): inbound audio RTP statistics.
export async function receiveStats() {
  if (!current) return null;
  const report = await current.pc.getStats();
  for (const s of report.values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      return { packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, concealedSamples: s.concealedSamples,
        totalSamplesReceived: s.totalSamplesReceived, jitter: s.jitter };
    }
  }
  return { packetsReceived: 0 };
}
window.fc25ReceiveStats = receiveStats;
