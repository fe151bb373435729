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
// `send(msg)` puts a message on the presence socket; `onFailure(text)` reports a media failure to the page.
export async function startBroadcast(session, stream, { send, onFailure, meterElement }) {
  stopBroadcast();
  const pc = new RTCPeerConnection({ iceServers: session.ice_servers || [] });
  current = { sessionId: session.session_id, pc, stream, meter: null, onFailure, pendingCandidates: [] };
  for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  pc.onicecandidate = (ev) => {
    if (!ev.candidate || !ev.candidate.candidate) return;
    // Its m-line by both names: the server takes either.
    send({ type: 'ice_candidate', session_id: session.session_id, candidate: ev.candidate.candidate,
      sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex });
  };
  pc.onconnectionstatechange = () => {
    if (current?.pc !== pc) return;
    document.body.dataset.mediaState = pc.connectionState;
    if (pc.connectionState === 'failed') onFailure('The audio connection to the server failed.');
  };
  if (meterElement) current.meter = startLevelMeter(stream, meterElement);
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  send({ type: 'webrtc_offer', session_id: session.session_id, sdp: pc.localDescription.sdp });
}

// Signalling from the server for our session. Returns true when the message was ours.
export function handleSignal(msg) {
  if (!current || msg.session_id !== current.sessionId) return false;
  const { pc } = current;
  if (msg.type === 'webrtc_answer') {
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
  const { pc, stream, meter } = current;
  current = null;
  try { pc.close(); } catch { /* already closed */ }
  for (const t of stream.getTracks()) t.stop();
  if (meter) meter.stop();
  delete document.body.dataset.mediaState;
}

