// The broadcast side of going live: the microphone goes to the server over WebRTC (signalled on the presence
// socket), a level meter shows the input. The browser's own echo cancellation, noise suppression and gain control
// are off: the server removes the noise, and the recording should be what the microphone heard, cleaned once.
// Nothing here runs before the user presses Go live.

import { startLevelMeter } from '/static/common/level_meter.js';

let current = null;   // { sessionId, pc, stream, meter }

// Asks for the microphone (the browser prompts on the first click). Throws an Error with a message for the page.
export async function openMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('This browser cannot capture audio (no getUserMedia).');
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      video: false,
    });
  } catch (e) {
    const why = e.name === 'NotAllowedError' ? 'microphone permission was refused'
      : e.name === 'NotFoundError' ? 'no microphone was found' : e.message;
    throw new Error(`Cannot go live: ${why}.`);
  }
}

// Starts sending `stream` for the live session `session` (the answer of POST /api/stream/start).
// `send(msg)` puts a message on the presence socket (false when it is down); `onFailure(text)` reports a failure
// the page cannot get over by itself.
export async function startBroadcast(session, stream, { send, onFailure, meterElement }) {
  stopBroadcast();
  current = { sessionId: session.session_id, iceServers: session.ice_servers || [], pc: null, stream, meter: null,
    send, onFailure, pendingCandidates: [], retry: null };
  if (meterElement) current.meter = startLevelMeter(stream, meterElement);
  await connect(current);
}

// A connection for the session: a new one replaces the one there was (the server keeps the same session and
// recording). Without the socket, it is made when the socket is back (reconnectBroadcast).
async function connect(me) {
  if (current !== me) return;
  clearTimeout(me.retry);
  if (me.pc) {
    try { me.pc.close(); } catch { /* closed */ }
  }
  const pc = new RTCPeerConnection({ iceServers: me.iceServers });
  me.pc = pc;
  me.pendingCandidates = [];
  for (const track of me.stream.getAudioTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [me.stream] });
  pc.onicecandidate = (ev) => {
    if (!ev.candidate || !ev.candidate.candidate || me.pc !== pc) return;
    // Its m-line by both names: the server takes either.
    me.send({ type: 'ice_candidate', session_id: me.sessionId, candidate: ev.candidate.candidate,
      sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex });
  };
  pc.onconnectionstatechange = () => {
    if (current !== me || me.pc !== pc) return;
    const st = pc.connectionState;
    document.body.dataset.mediaState = st;
    clearTimeout(me.retry);
    // A network blip: the connection may come back by itself; if it has not after a few seconds (or failed), a
    // new one is made. The server waits for it (the reconnect grace) and ends the stream if it never comes.
    if (st === 'disconnected') me.retry = setTimeout(() => reconnect(me), 3000);
    else if (st === 'failed') reconnect(me);
  };
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  if (current !== me || me.pc !== pc) return;
  // Not sent (the socket is down): it goes when the socket is back, as an offer with no answer.
  me.send({ type: 'webrtc_offer', session_id: me.sessionId, sdp: pc.localDescription.sdp });
}

function reconnect(me) {
  if (current !== me) return;
  document.body.dataset.mediaReconnects = String(Number(document.body.dataset.mediaReconnects || 0) + 1);
  connect(me).catch((e) => me.onFailure(`The audio connection could not be made again: ${e.message}`));
}

// The presence socket is back: a connection that is not up is made again, and so is one whose offer has had no
// answer, whether it could not be sent or a socket died with it (the browser takes the message and only then finds
// the connection gone, and an answer meant for the old socket never comes).
export function reconnectBroadcast() {
  const me = current;
  if (!me || !me.pc) return;
  const st = me.pc.connectionState;
  const unanswered = me.pc.signalingState === 'have-local-offer';
  if (unanswered || st === 'failed' || st === 'disconnected' || st === 'closed') reconnect(me);
}

// Signalling from the server for our session. Returns true when the message was ours.
export function handleSignal(msg) {
  if (!current || msg.session_id !== current.sessionId) return false;
  const { pc } = current;
  if (msg.type === 'webrtc_answer') {
    if (pc.signalingState !== 'have-local-offer') return true;   // an answer to an offer replaced since
    pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp }).then(async () => {
      for (const c of current?.pendingCandidates ?? []) await pc.addIceCandidate(c).catch(() => {});
      if (current) current.pendingCandidates = [];
    }).catch((e) => current?.onFailure(`The server's answer could not be used: ${e.message}`));
    return true;
  }
  if (msg.type === 'ice_candidate') {
    const c = { candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex };
    if (pc.remoteDescription) pc.addIceCandidate(c).catch(() => {});
    else current.pendingCandidates.push(c);
    return true;
  }
  if (msg.type === 'error' && (msg.for === 'webrtc_offer' || msg.for === 'ice_candidate')) {
    current.onFailure(msg.error?.message || 'The server refused the audio connection.');
    return true;
  }
  return false;
}

// The live session this tab is sending (null when it sends nothing).
export function broadcastSession() {
  return current ? current.sessionId : null;
}

// Stops sending and releases the microphone. Safe to call at any time.
export function stopBroadcast() {
  if (!current) return;
  const { pc, stream, meter, retry } = current;
  current = null;
  clearTimeout(retry);
  try { pc?.close(); } catch { /* already closed */ }
  for (const t of stream.getTracks()) t.stop();
  if (meter) meter.stop();
  delete document.body.dataset.mediaState;
}

