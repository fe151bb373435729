// Dashboard: wires the page to the API and the presence socket. The server is the authority on whether this
// user is live; the page shows what it says and never starts a stream by itself.
import { api, me as fetchMe } from '/static/common/api.js';
import { clientId } from '/static/common/clientid.js';
import { Presence } from '/static/common/presence.js';
import { noteServerTime, startTicker } from '/static/common/timer.js';
import { broadcastSession, handleSignal, openMicrophone, reconnectBroadcast, startBroadcast, stopBroadcast }
  from './broadcast.js';
import { mountRecordings } from '/static/common/recordings.js';
import { LiveAlerts } from '/static/common/alerts.js';
import { handleListenMessage, reconnectListening, startListening, stopListening } from '/static/common/listen.js';

const $ = (id) => document.getElementById(id);
const state = { me: null, friends: new Map(), incoming: [], outgoing: [] };
let presence = null;
let alerts = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function ownsStream() {
  return state.me.is_streaming && state.me.client_id === clientId;
}

function renderLive() {
  const m = state.me;
  const timer = $('timer');
  $('my-dot').classList.toggle('live', m.is_streaming);
  const reconnecting = m.is_streaming && m.state === 'reconnecting';
  $('live-state').textContent = !m.is_streaming ? (micTest.id !== null ? 'Not live: testing the microphone' : 'Offline')
    : reconnecting ? (ownsStream() ? 'Reconnecting… (the stream goes on)' : 'Reconnecting… (another tab)')
      : ownsStream() ? 'Live' : 'Live in another tab';
  $('live-state').parentElement.dataset.state = m.is_streaming ? (reconnecting ? 'reconnecting' : 'live') : 'offline';
  $('go-live').hidden = m.is_streaming || micTest.id !== null;
  $('mic-test').hidden = m.is_streaming || micTest.id !== null;
  $('stop').hidden = !m.is_streaming;
  $('live-elsewhere').hidden = !m.is_streaming || ownsStream();
  timer.hidden = !m.is_streaming;
  if (!ownsStream() && micTest.id === null) showNoiseMeter(null);
  if (!m.is_streaming) $('listener-count').hidden = true;
  if (m.is_streaming) timer.dataset.startedAt = m.started_at;
  else delete timer.dataset.startedAt;
  document.title = (m.is_streaming ? '● ' : '') + 'Dashboard · fc25';
}

function renderFriends() {
  const list = $('friends');
  list.replaceChildren();
  const names = [...state.friends.keys()].sort();
  $('no-friends').hidden = names.length > 0;
  for (const name of names) {
    const f = state.friends.get(name);
    const timer = el('span', { class: 'timer small muted' });
    if (f.is_streaming) timer.dataset.startedAt = f.started_at;
    const reconnecting = f.is_streaming && f.state === 'reconnecting';
    const muted = alerts.isMuted(name);
    list.append(
      el('li', { 'data-testid': `friend-${name}`, 'data-live': String(f.is_streaming),
        'data-state': f.is_streaming ? (reconnecting ? 'reconnecting' : 'live') : 'offline' },
        el('span', { class: 'badge' }, el('span', { class: 'dot' + (f.is_streaming ? ' live' : '') + (reconnecting ? ' reconnecting' : '') }),
          el('a', { href: `/u/${encodeURIComponent(name)}` }, name),
          el('span', { class: 'muted' }, reconnecting ? 'reconnecting… live for' : f.is_streaming ? 'live for' : 'offline'), timer),
        el('span', { class: 'row' },
          f.is_streaming ? el('a', { class: 'button-link', href: `/u/${encodeURIComponent(name)}`,
            'data-testid': `listen-${name}` }, 'Listen') : '',
          el('button', { type: 'button', 'data-testid': `mute-${name}`, 'aria-pressed': String(muted),
            title: muted ? `You are not told when ${name} goes live` : `Stop telling me when ${name} goes live`,
            onclick: () => { alerts.setMuted(name, !muted); renderFriends(); } }, muted ? 'Unmute' : 'Mute'),
          el('button', { type: 'button', 'data-testid': `remove-${name}`, onclick: () => removeFriend(name) }, 'Remove'))));
  }
}

function renderNotify() {
  const st = alerts.notificationState();
  const b = $('notify');
  b.dataset.state = st;
  b.setAttribute('aria-pressed', String(st === 'on'));
  b.textContent = st === 'on' ? 'Notifications: on' : 'Notify me when friends go live';
  b.disabled = st === 'blocked' || st === 'unsupported';
  $('notify-note').textContent = st === 'blocked' ? 'This browser blocks notifications from fc25: allow them in its site settings.'
    : st === 'unsupported' ? 'This browser cannot show notifications; friends going live still show here.' : '';
}

function renderRequests() {
  const inc = $('incoming');
  inc.replaceChildren();
  for (const r of state.incoming) {
    inc.append(el('li', { 'data-testid': `incoming-${r.from}` }, el('span', {}, r.from),
      el('span', { class: 'row' },
        el('button', { type: 'button', class: 'primary', 'data-testid': `accept-${r.from}`, onclick: () => act(r.id, 'accept') }, 'Accept'),
        el('button', { type: 'button', 'data-testid': `decline-${r.from}`, onclick: () => act(r.id, 'decline') }, 'Decline'))));
  }
  if (!state.incoming.length) inc.append(el('li', { class: 'muted' }, 'None'));
  const out = $('outgoing');
  out.replaceChildren();
  for (const r of state.outgoing) {
    out.append(el('li', { 'data-testid': `outgoing-${r.to}` }, el('span', {}, r.to),
      el('button', { type: 'button', 'data-testid': `cancel-${r.to}`, onclick: () => act(r.id, 'cancel') }, 'Cancel')));
  }
  if (!state.outgoing.length) out.append(el('li', { class: 'muted' }, 'None'));
}

// Applies what the server says about our own stream (snapshot, status push, poll, our own requests). The server is
// the authority: when it says the session this tab sends is not live (it ended while the socket was down, or the
// server restarted), the microphone is released and the connection closed at once.
// `asOf`: when the server made this status (server_now of a poll or a snapshot). A status made before the stream
// this page has started (a poll sent just before Go live, answered after it) says nothing about that stream.
function setSelf(s, asOf) {
  if (asOf && state.me.is_streaming && state.me.started_at && Date.parse(asOf) <= Date.parse(state.me.started_at)) {
    return;
  }
  const sending = broadcastSession();
  // (A late "stopped" for an older session of ours says nothing about the one this tab sends now; a microphone
  // test, negative ids, is no stream.)
  const ended = s.is_streaming ? s.session_id !== sending : (s.session_id == null || s.session_id === sending);
  if (sending !== null && sending > 0 && ended) {
    stopBroadcast();
    const note = $('live-error');
    const last = s.last_stream;
    if (!note.textContent) {
      note.textContent = last && last.session_id === sending && last.end_reason
        ? `The stream ended while the connection to the server was down: ${endReasonText(last.end_reason)}.`
        : 'The stream ended while the connection to the server was down.';
    }
    loadRecordings().catch(() => {});
  }
  state.me = { ...state.me, is_streaming: s.is_streaming, session_id: s.session_id, started_at: s.started_at,
    state: s.state ?? (s.is_streaming ? 'live' : 'offline'),
    client_id: s.client_id ?? (s.is_streaming ? state.me.client_id : null) };
  // The server thinks this tab went away (its socket closed): it is here, on the socket this came through.
  if (s.is_streaming && s.state === 'reconnecting' && sending === s.session_id) {
    presence?.send({ type: 'resume', session_id: s.session_id });
  }
  renderLive();
}

function setFriend(s) {
  state.friends.set(s.username, s);
  renderFriends();
}

// The request lists as the server has them. Every load and every push takes the next version; a load's answer is
// shown only if nothing came after the load started: after a push it may predate the push (it is loaded again, so a
// request is never lost), and a newer load's answer is the one to show.
let requestsVersion = 0;
let newestLoad = 0;
async function loadRequests() {
  for (;;) {
    const mine = newestLoad = ++requestsVersion;
    const r = await api('GET', '/api/friends/requests');
    if (mine !== newestLoad) return;
    if (mine !== requestsVersion) continue;
    state.incoming = r.incoming;
    state.outgoing = r.outgoing;
    renderRequests();
    return;
  }
}

// A push changed the request lists (state.incoming / state.outgoing already updated).
function requestsPushed() {
  requestsVersion += 1;
  renderRequests();
}

async function poll() {
  const [m, f] = await Promise.all([fetchMe(), api('GET', '/api/friends')]);
  if (!m) return location.assign('/login');
  noteServerTime(m.server_now);
  setSelf(m, m.server_now);
  state.friends = new Map(f.friends.map((x) => [x.username, x]));
  renderFriends();
  await loadRequests();
}

function onPresence(msg) {
  switch (msg.type) {
    case 'snapshot':
      noteServerTime(msg.server_now);
      setSelf(msg.self, msg.server_now);
      state.friends = new Map(msg.friends.map((x) => [x.username, x]));
      renderFriends();
      loadRequests().catch(() => {});
      break;
    case 'listeners':
      if (msg.session_id === state.me.session_id) {
        const c = $('listener-count');
        c.hidden = false;
        c.dataset.count = String(msg.count);
        c.textContent = msg.count === 1 ? '1 listener' : `${msg.count} listeners`;
      }
      break;
    case 'noise_meter':
      if (msg.session_id === broadcastSession()) showNoiseMeter(msg);
      break;
    case 'strength_set':
      if (msg.session_id === state.me.session_id) {
        strength.live = msg.strength;
        $('strength-note').textContent = `${strengthText(msg.strength)} from now on.`;
      }
      break;
    case 'error':
      if (msg.for === 'mic_test_start' || (msg.for === 'listen_offer' && micTest.id !== null)) {
        endMicTest(`The microphone test could not start: ${msg.error?.message || 'refused'}.`);
        break;
      }
      if (msg.for === 'set_strength') {
        $('strength-note').textContent = `The strength could not be changed: ${msg.error?.message || 'refused'}.`;
        checkStrength(strength.live);
        break;
      }
      handleSignal(msg);
      break;
    case 'mic_test_started':
    case 'mic_test_ended':
      onMicTest(msg);
      break;
    case 'webrtc_answer':
    case 'ice_candidate':
    case 'listen_answer':
    case 'listen_ended':
      if (!handleSignal(msg)) handleListenMessage(msg);
      break;
    case 'streaming_status':
      if (msg.username === state.me.username) {
        // Another tab (or the server) changed our stream; a stop while we broadcast ends our media too.
        if (!msg.is_streaming && ownsStream()) {
          stopBroadcast();
          if (msg.end_reason && msg.end_reason !== 'user' && msg.end_reason !== 'page_unload') {
            $('live-error').textContent = `The stream ended: ${endReasonText(msg.end_reason)}.`;
          }
        }
        if (!msg.is_streaming) loadRecordings().catch(() => {});
        setSelf({ ...msg, client_id: msg.is_streaming ? state.me.client_id : null });
        if (msg.is_streaming && state.me.session_id !== msg.session_id) poll().catch(() => {});
      } else if (state.friends.has(msg.username)) {
        if (msg.is_streaming) alerts.friendWentLive(msg);
        setFriend({ username: msg.username, is_streaming: msg.is_streaming, session_id: msg.session_id,
          started_at: msg.started_at, state: msg.state });
      }
      break;
    case 'friend_request':
      state.incoming = state.incoming.filter((r) => r.id !== msg.request.id).concat([msg.request]);
      requestsPushed();
      break;
    case 'friend_request_cancelled':
      state.incoming = state.incoming.filter((r) => r.id !== msg.request.id);
      requestsPushed();
      break;
    case 'friend_request_declined':
      state.outgoing = state.outgoing.filter((r) => r.id !== msg.request.id);
      $('request-note').textContent = `${msg.request.to} declined your friend request.`;
      requestsPushed();
      break;
    case 'friend_added':
      setFriend(msg.friend);
      $('request-error').textContent = '';   // a refusal about this request says nothing any more
      $('request-note').textContent = '';
      state.incoming = state.incoming.filter((r) => r.from !== msg.friend.username);
      state.outgoing = state.outgoing.filter((r) => r.to !== msg.friend.username);
      requestsPushed();
      break;
    case 'friend_removed':
      state.friends.delete(msg.username);
      renderFriends();
      break;
    default:
      break;
  }
}

function endReasonText(reason) {
  return {
    socket_closed: 'the connection to the server was lost and did not come back in time',
    webrtc_failed: 'the audio connection was lost and did not come back in time',
    media_timeout: 'no audio reached the server for a while',
    server_shutdown: 'the server shut down',
    server_restart: 'the server restarted',
    node_lost: 'the server carrying it stopped answering',
    media_error: 'the server could not record it',
    recording_failed: 'the server could not save your recording',
  }[reason] || reason;
}

// Noise removal strength: chosen before going live and changeable while live (from the next 10 ms of audio).
const strength = { live: null };   // what the server applies to the stream this tab sends
const STRENGTHS = { off: 'Off: nothing removed', light: 'Light: at most 12 dB removed',
  balanced: 'Balanced: at most 24 dB removed', full: 'Full: all the noise removed' };
const strengthText = (s) => STRENGTHS[s] || s;
const chosenStrength = () => document.querySelector('input[name=strength]:checked')?.value || 'full';
function checkStrength(value) {
  const input = document.querySelector(`input[name=strength][value="${value}"]`);
  if (input) input.checked = true;
}

function onStrengthChange() {
  const value = chosenStrength();
  try { localStorage.setItem('fc25.strength', value); } catch { /* private mode */ }
  if (micTest.id !== null) {
    if (micTest.on) presence?.send({ type: 'set_strength', session_id: micTest.id, strength: value });
    return;
  }
  if (!ownsStream() || broadcastSession() === null) {
    $('strength-note').textContent = '';
    return;
  }
  if (!presence?.send({ type: 'set_strength', session_id: state.me.session_id, strength: value })) {
    $('strength-note').textContent = 'Not connected to the server: the strength is unchanged.';
    checkStrength(strength.live);
  }
}

// The live noise meter: how loud the room behind the voice is and how much of it the server removes.
function showNoiseMeter(m) {
  const box = $('noise-meter');
  if (!m) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  $('noise-background').textContent = m.background;
  box.dataset.background = m.background;
  $('noise-level').value = Math.max(-90, Math.min(-20, m.noise_dbfs));
  if (m.removed_db != null) {
    $('noise-removed').textContent = `${Math.round(m.removed_db)} dB`;
    box.dataset.removed = String(m.removed_db);
  }
}

// The microphone test: the page's microphone to the server and straight back, denoised, for up to a minute.
const micTest = { id: null, mic: null, on: true };

async function startMicTest() {
  $('live-error').textContent = '';
  $('mic-test').disabled = true;
  try {
    micTest.mic = await openMicrophone();
    if (!presence?.send({ type: 'mic_test_start', strength: chosenStrength() })) {
      throw new Error('Not connected to the server: try again in a moment.');
    }
  } catch (e) {
    endMicTest(e.message.replace(/^Cannot go live/, 'Cannot test the microphone'));
  } finally {
    $('mic-test').disabled = false;
  }
}

async function onMicTest(msg) {
  if (msg.type === 'mic_test_ended') {
    if (msg.test_id !== micTest.id) return;
    endMicTest(msg.reason === 'time_limit' ? 'The microphone test ends after a minute.'
      : msg.reason === 'stopped' ? '' : `The microphone test ended (${msg.reason}).`);
    return;
  }
  if (!micTest.mic) return presence?.send({ type: 'mic_test_stop', test_id: msg.test_id });  // cancelled meanwhile
  micTest.id = msg.test_id;
  micTest.on = msg.strength !== 'off';
  renderMicTest(msg);
  const send = (m) => presence?.send(m);
  const onFailure = (text) => endMicTest(text);
  await startBroadcast({ session_id: micTest.id, ice_servers: state.me.ice_servers }, micTest.mic,
    { send, meterElement: $('level'), onFailure });
  micTest.mic = null;   // the broadcast owns it now
  await startListening(state.me.username, { send, audio: $('mic-test-audio'), meterElement: $('mic-test-level'),
    iceServers: state.me.ice_servers,
    onEnded: (text) => { if (text) endMicTest(text); }, offer: { test_id: micTest.id } });
}

function renderMicTest(started) {
  const testing = micTest.id !== null;
  $('mic-test-panel').hidden = !testing;
  const timer = $('mic-test-timer');
  if (started) timer.dataset.startedAt = new Date().toISOString();
  if (!testing) delete timer.dataset.startedAt;
  const ab = $('mic-test-ab');
  ab.setAttribute('aria-pressed', String(micTest.on));
  ab.textContent = micTest.on ? 'Noise removal: on' : 'Noise removal: off';
  renderLive();
}

function endMicTest(text) {
  if (micTest.id !== null) presence?.send({ type: 'mic_test_stop', test_id: micTest.id });
  if (micTest.id !== null || broadcastSession() !== null && broadcastSession() < 0) stopBroadcast();
  stopListening();
  if (micTest.mic) for (const t of micTest.mic.getTracks()) t.stop();
  micTest.mic = null;
  micTest.id = null;
  showNoiseMeter(null);
  if (text) $('live-error').textContent = text;
  renderMicTest();
}

function liveOptions() {
  return { client_id: clientId, strength: chosenStrength() };
}

async function goLive() {
  $('live-error').textContent = '';
  $('go-live').disabled = true;
  let mic = null;
  try {
    mic = await openMicrophone();   // only now, on the click: a page load never asks
    const s = await api('POST', '/api/stream/start', liveOptions());
    setSelf({ is_streaming: true, session_id: s.session_id, started_at: s.started_at, client_id: clientId });
    strength.live = s.strength;
    $('strength-note').textContent = '';
    $('denoiser-note').textContent = s.denoiser === 'dfn3' ? ''
      : s.denoiser === 'classic' ? 'Noise removal is basic: the DeepFilterNet model is not installed on the server.'
        : 'Noise removal is off on this server.';
    await startBroadcast(s, mic, {
      send: (m) => presence?.send(m),
      meterElement: $('level'),
      onFailure: (text) => { $('live-error').textContent = text; },
    });
    mic = null;
  } catch (e) {
    $('live-error').textContent = e.message;
    if (mic) for (const t of mic.getTracks()) t.stop();
  } finally {
    $('go-live').disabled = false;
  }
}

let loadRecordings = async () => {};

async function stop() {
  $('live-error').textContent = '';
  $('stop').disabled = true;
  try {
    if (ownsStream()) stopBroadcast();
    await api('POST', '/api/stream/stop', { session_id: state.me.session_id, reason: 'user' });
    setSelf({ is_streaming: false, session_id: null, started_at: null, client_id: null });
    $('strength-note').textContent = '';
  } catch (e) {
    $('live-error').textContent = e.message;
  } finally {
    $('stop').disabled = false;
  }
}

async function act(id, action) {
  $('request-error').textContent = '';
  try {
    await api('POST', `/api/friends/requests/${id}/${action}`);
    await loadRequests();
    if (action === 'accept') {
      const f = await api('GET', '/api/friends');
      state.friends = new Map(f.friends.map((x) => [x.username, x]));
      renderFriends();
    }
  } catch (e) {
    $('request-error').textContent = e.message;
  }
}

async function removeFriend(name) {
  if (!confirm(`Remove ${name} from your friends? To be friends again, one of you sends a new request.`)) return;
  try {
    await api('DELETE', `/api/friends/${encodeURIComponent(name)}`);
    state.friends.delete(name);
    renderFriends();
  } catch (e) {
    $('request-error').textContent = e.message;
  }
}

async function main() {
  const m = await fetchMe();
  if (!m) return location.assign('/login');
  state.me = m;
  alerts = new LiveAlerts(m.username);
  renderNotify();
  $('notify').addEventListener('click', async () => {
    await alerts.setNotifications(alerts.notificationState() !== 'on');
    renderNotify();
  });
  // The controls work from the moment they are shown (renderLive below): a click while the lists still load is
  // not lost. Going live before the presence socket is up sends the offer once it is (reconnectBroadcast).
  try { checkStrength(localStorage.getItem('fc25.strength') || 'full'); } catch { /* private mode */ }
  for (const input of document.querySelectorAll('input[name=strength]')) input.addEventListener('change', onStrengthChange);
  $('go-live').addEventListener('click', goLive);
  $('mic-test').addEventListener('click', startMicTest);
  $('mic-test-stop').addEventListener('click', () => endMicTest(''));
  $('mic-test-ab').addEventListener('click', () => {
    if (micTest.id === null) return;
    micTest.on = !micTest.on;
    presence?.send({ type: 'set_strength', session_id: micTest.id, strength: micTest.on ? chosenStrength() : 'off' });
    renderMicTest();
  });
  $('stop').addEventListener('click', stop);
  $('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/api/auth/logout');
      location.assign('/login');
    } catch (e) {
      $('live-error').textContent = `Could not log out: ${e.message}`;
    }
  });
  $('request-username').addEventListener('input', () => { $('request-error').textContent = ''; });
  $('request-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('request-error').textContent = '';
    $('request-note').textContent = '';
    const input = $('request-username');
    if (!input.value.trim()) {
      $('request-error').textContent = 'Enter the username of the friend to ask.';
      input.focus();
      return;
    }
    try {
      const r = await api('POST', '/api/friends/requests', { username: input.value.trim() });
      input.value = '';
      if (r.friend) await poll();
      else await loadRequests();
    } catch (e) {
      $('request-error').textContent = e.message;
    }
  });
  // Leaving the page ends the stream this tab owns; the beacon survives the unload.
  window.addEventListener('pagehide', () => {
    if (!ownsStream()) return;
    stopBroadcast();
    navigator.sendBeacon('/api/stream/stop', new URLSearchParams({
      csrf_token: state.me.csrf_token, session_id: String(state.me.session_id), reason: 'page_unload' }));
  });
  noteServerTime(m.server_now);
  $('me').textContent = m.username;
  renderLive();
  const f = await api('GET', '/api/friends');
  state.friends = new Map(f.friends.map((x) => [x.username, x]));
  renderFriends();
  await loadRequests();
  loadRecordings = mountRecordings($('recordings'), { usage: $('usage') });
  await loadRecordings().catch(() => {});
  startTicker();

  presence = new Presence({
    onMessage: onPresence,
    onState: (up) => {
      const c = $('connection');
      c.textContent = up ? '' : 'reconnecting…';
      c.classList.toggle('down', !up);
      if (up) {
        reconnectBroadcast();
        reconnectListening();
      }
    },
    poll,
  });
}

main().catch((e) => {
  $('live-error').textContent = 'Could not load the dashboard: ' + e.message;
});
