// A friend's page: their live status and timer, kept current by presence pushes.
import { api, me as fetchMe } from '/static/common/api.js';
import { Presence } from '/static/common/presence.js';
import { LiveAlerts } from '/static/common/alerts.js';
import { mountRecordings } from '/static/common/recordings.js';
import { noteServerTime, startTicker } from '/static/common/timer.js';
import { handleListenMessage, listening, reconnectListening, startListening, stopListening } from '/static/common/listen.js';

const $ = (id) => document.getElementById(id);
const username = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '').toLowerCase();

let presence = null;
let me = null;
let live = false;

function renderListen() {
  $('listen').hidden = !live || listening();
  $('stop-listening').hidden = !listening();
}

function ended(text) {
  $('listen-note').textContent = text;
  renderListen();
}

async function listen() {
  $('listen-note').textContent = 'Connecting…';
  try {
    await startListening(username, {
      send: (m) => presence?.send(m),
      audio: $('player'),
      meterElement: $('listen-level'),
      iceServers: me.ice_servers,
      onEnded: ended,
    });
    $('listen-note').textContent = 'Listening';
  } catch (e) {
    ended(`Cannot listen: ${e.message}`);
  }
  renderListen();
}

let showRecordings = null;
async function loadRecordings() {
  showRecordings ??= mountRecordings($('recordings'), { username });
  await showRecordings();
  $('recordings-card').hidden = false;
}

function render(s) {
  const wasLive = live;
  live = s.is_streaming;
  if (!live && listening()) {
    stopListening();
    $('listen-note').textContent = 'The stream ended.';
  }
  // A new stream: what was said about the last one (it ended, it could not be heard) no longer applies.
  if (live && !wasLive && !listening()) $('listen-note').textContent = '';
  renderListen();
  $('status-panel').hidden = false;
  $('status-panel').dataset.live = String(s.is_streaming);
  $('dot').classList.toggle('live', s.is_streaming);
  const reconnecting = s.is_streaming && s.state === 'reconnecting';
  $('status-panel').dataset.state = s.is_streaming ? (reconnecting ? 'reconnecting' : 'live') : 'offline';
  $('dot').classList.toggle('reconnecting', reconnecting);
  $('state').textContent = reconnecting ? 'Reconnecting… live for' : s.is_streaming ? 'Live for' : 'Offline';
  $('timer').hidden = !s.is_streaming;
  if (s.is_streaming) $('timer').dataset.startedAt = s.started_at;
  else delete $('timer').dataset.startedAt;
}

async function load() {
  const s = await api('GET', `/api/stream/status?username=${encodeURIComponent(username)}`);
  render(s);
}

async function main() {
  $('name').textContent = username;
  document.title = `${username} · fc25`;
  const m = await fetchMe();
  if (!m) return location.assign('/login');
  me = m;
  const alerts = new LiveAlerts(m.username);
  noteServerTime(m.server_now);
  try {
    await load();
  } catch (e) {
    $('error').textContent = e.status === 403 ? `You are not friends with ${username}.` : e.message;
    return;
  }
  startTicker();
  loadRecordings().catch(() => {});
  $('listen').addEventListener('click', listen);
  $('stop-listening').addEventListener('click', () => {
    stopListening((msg) => presence?.send(msg));
    ended('');
  });
  presence = new Presence({
    onMessage: (msg) => {
      if (handleListenMessage(msg)) {
        renderListen();
        return;
      }
      if (msg.type === 'snapshot') {
        noteServerTime(msg.server_now);
        const f = msg.friends.find((x) => x.username === username);
        if (f) render(f);
      } else if (msg.type === 'streaming_status' && msg.username === username) {
        render(msg);
        if (!msg.is_streaming) setTimeout(() => loadRecordings().catch(() => {}), 300);
      } else if (msg.type === 'streaming_status' && msg.is_streaming && msg.username !== me.username) {
        alerts.friendWentLive(msg);   // another friend: a toast (this page is not theirs)
      } else if (msg.type === 'friend_removed' && msg.username === username) {
        if (listening()) stopListening();
        $('status-panel').hidden = true;
        $('recordings-card').hidden = true;
        $('listen-note').textContent = '';
        $('error').textContent = `You are not friends with ${username} any more.`;
      }
    },
    onState: (up) => {
      $('connection').textContent = up ? '' : 'reconnecting…';
      if (up) reconnectListening();
    },
    poll: load,
  });
}

main().catch((e) => { $('error').textContent = e.message; });
