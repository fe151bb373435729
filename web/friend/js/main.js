// A friend's page: their live status and timer, kept current by presence pushes.
import { api, me as fetchMe } from '/static/common/api.js';
import { Presence } from '/static/common/presence.js';
import { noteServerTime, startTicker } from '/static/common/timer.js';

const $ = (id) => document.getElementById(id);
const username = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '').toLowerCase();

function render(s) {
  $('status-panel').hidden = false;
  $('status-panel').dataset.live = String(s.is_streaming);
  $('dot').classList.toggle('live', s.is_streaming);
  $('state').textContent = s.is_streaming ? 'Live' : 'Offline';
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
  noteServerTime(m.server_now);
  try {
    await load();
  } catch (e) {
    $('error').textContent = e.status === 403 ? `You are not friends with ${username}.` : e.message;
    return;
  }
  startTicker();
  new Presence({
    onMessage: (msg) => {
      if (msg.type === 'snapshot') {
        noteServerTime(msg.server_now);
        const f = msg.friends.find((x) => x.username === username);
        if (f) render(f);
      } else if (msg.type === 'streaming_status' && msg.username === username) {
        render(msg);
      } else if (msg.type === 'friend_removed' && msg.username === username) {
        $('status-panel').hidden = true;
        $('error').textContent = `You are not friends with ${username} any more.`;
      }
    },
    onState: (up) => { $('connection').textContent = up ? '' : 'reconnecting…'; },
    poll: load,
  });
}

main().catch((e) => { $('error').textContent = e.message; });
