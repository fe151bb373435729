// A list of recordings with a player each (the server answers Range requests, so the player can seek) and a
// waveform picture of the whole recording: click it to jump there (or focus it and use the arrow keys, Home, End);
// the part already played is drawn darker.
import { api } from '/static/common/api.js';

// Whole seconds, as players count them (6.5 s is 00:06).
const fmtDuration = (s) => {
  const t = Math.floor(s);
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
};
const fmtSize = (b) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MB` : b === 0 ? '0 KB' : `${Math.max(1, Math.round(b / 1024))} KB`);

// Shows a user's recordings in `list` (own: `username` null), newest first, 100 at a time with a "Show older" button
// after them; `usage` (own list) gets a line on the space they take. Returns a function that loads it afresh.
export function mountRecordings(list, { username = null, usage = null } = {}) {
  const more = document.createElement('button');
  more.type = 'button';
  more.textContent = 'Show older recordings';
  more.setAttribute('data-testid', 'recordings-more');
  more.hidden = true;
  list.after(more);
  const query = (before) => {
    const q = new URLSearchParams();
    if (username) q.set('username', username);
    if (before) q.set('before', String(before));
    const s = q.toString();
    return `/api/recordings${s ? `?${s}` : ''}`;
  };
  let next = null;
  const page = async (before) => {
    const r = await api('GET', query(before));
    renderRecordings(list, r.recordings, { append: Boolean(before), reload: load });
    next = r.next_before;
    more.hidden = next == null;
    if (usage && r.usage) showUsage(usage, r.usage);
  };
  const load = () => page(null);
  more.addEventListener('click', () => { if (next != null) page(next).catch(() => {}); });
  return load;
}

function showUsage(el, { bytes, quota_bytes: quota }) {
  el.hidden = bytes === 0 && !quota;   // nothing recorded: "No recordings yet" says it
  el.dataset.bytes = String(bytes);
  el.textContent = quota ? `Your recordings use ${fmtSize(bytes)} of ${fmtSize(quota)}.`
    : `Your recordings use ${fmtSize(bytes)}.`;
  el.classList.toggle('error', Boolean(quota) && bytes >= quota);
  if (quota && bytes >= quota) el.textContent += ' The quota is full: delete some to go live again.';
}

const fmtWhen = (iso) => new Date(iso).toLocaleString();

export function renderRecordings(list, recordings, { append = false, reload = null } = {}) {
  if (!append) list.replaceChildren();
  if (!recordings.length && !append) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No recordings yet.';
    list.append(li);
    return;
  }
  for (const r of recordings) list.append(recordingItem(r, reload));
}

function button(text, testid, onclick, attrs = {}) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('data-testid', testid);
  for (const [k, v] of Object.entries(attrs)) b.setAttribute(k, v);
  b.addEventListener('click', onclick);
  return b;
}

function recordingItem(r, reload) {
  const li = document.createElement('li');
  li.className = 'recording';
  li.setAttribute('data-testid', `recording-${r.id}`);
  li.dataset.duration = String(r.duration_s);
  const title = document.createElement('strong');
  title.className = 'recording-title';
  title.setAttribute('data-testid', `recording-title-${r.id}`);
  title.textContent = r.title || fmtWhen(r.started_at);
  const info = document.createElement('span');
  info.textContent = `${r.title ? `${fmtWhen(r.started_at)} · ` : ''}${fmtDuration(r.duration_s)} · ${fmtSize(r.bytes)}`;
  if (r.noise_removed_db != null) {
    const removed = document.createElement('span');
    removed.className = 'muted small';
    removed.setAttribute('data-testid', `noise-removed-${r.id}`);
    removed.textContent = ` · noise removed ${Math.round(r.noise_removed_db)} dB`;
    removed.title = 'How much lower the background noise was after noise removal, on average';
    info.append(removed);
  }
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.preload = 'metadata';
  audio.src = r.url;
  audio.setAttribute('aria-label', `Play ${r.title || `the recording of ${fmtWhen(r.started_at)}`}`);
  li.append(title, info, audio, waveform(r, audio));
  const actions = document.createElement('span');
  actions.className = 'row';
  if (r.raw_url) actions.append(abSwitch(r, audio));
  const download = document.createElement('a');
  download.href = r.download_url;
  download.textContent = 'Download';
  download.className = 'button-link';
  download.setAttribute('data-testid', `download-recording-${r.id}`);
  actions.append(download);
  if (r.can_edit) actions.append(button('Rename', `rename-recording-${r.id}`, () => rename(r, li, title, reload)));
  if (r.can_delete) {
    actions.append(button('Delete', `delete-recording-${r.id}`, () => {
      if (!confirm('Delete this recording? This cannot be undone.')) return;
      api('DELETE', `/api/recordings/${r.id}`).then(() => reload?.()).catch((e) => {
        li.querySelector('.delete-error')?.remove();
        li.append(alertBox('p', `Could not delete it: ${e.message}`, 'delete-error'));
      });
    }));
  }
  li.append(actions);
  return li;
}

// Clean (what friends heard) or Original (what the microphone gave): the player keeps its place and keeps playing.
function abSwitch(r, audio) {
  const box = document.createElement('span');
  box.className = 'ab';
  box.setAttribute('role', 'group');
  box.setAttribute('aria-label', 'Version');
  const choose = (src, pressed) => {
    if (audio.getAttribute('src') === src) return;
    const at = audio.currentTime;
    const playing = !audio.paused;
    audio.src = src;
    audio.addEventListener('loadedmetadata', () => {
      audio.currentTime = at;
      if (playing) audio.play().catch(() => {});
    }, { once: true });
    for (const b of box.children) b.setAttribute('aria-pressed', String(b === pressed));
    audio.dataset.version = src === r.url ? 'clean' : 'original';
  };
  const clean = button('Clean', `ab-clean-${r.id}`, () => choose(r.url, clean), { 'aria-pressed': 'true' });
  const original = button('Original', `ab-original-${r.id}`, () => choose(r.raw_url, original), { 'aria-pressed': 'false' });
  box.append(clean, original);
  audio.dataset.version = 'clean';
  return box;
}

// The owner's inline rename: Enter or Save keeps it, Escape or Cancel does not.
function rename(r, li, title, reload) {
  if (li.querySelector('form.rename')) return;
  const form = document.createElement('form');
  form.className = 'rename row';
  const input = document.createElement('input');
  input.type = 'text';
  input.maxLength = 100;
  input.value = r.title;
  input.setAttribute('aria-label', 'Title');
  input.setAttribute('data-testid', `title-input-${r.id}`);
  const save = document.createElement('button');
  save.type = 'submit';
  save.className = 'primary';
  save.textContent = 'Save';
  save.setAttribute('data-testid', `title-save-${r.id}`);
  const err = alertBox('span', '');
  const close = () => form.remove();
  form.append(input, save, button('Cancel', `title-cancel-${r.id}`, close), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const updated = await api('PATCH', `/api/recordings/${r.id}`, { title: input.value });
      r.title = updated.title;
      title.textContent = updated.title || fmtWhen(r.started_at);
      close();
    } catch (e) {
      err.textContent = e.message;
    }
  });
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') close(); });
  title.after(form);
  input.focus();
}

// An error message read out as it appears.
function alertBox(tag, text, extraClass = '') {
  const e = document.createElement(tag);
  e.className = `error ${extraClass}`.trim();
  e.setAttribute('role', 'alert');
  e.textContent = text;
  return e;
}

function waveform(r, audio) {
  const canvas = document.createElement('canvas');
  canvas.className = 'waveform';
  canvas.setAttribute('data-testid', `waveform-${r.id}`);
  canvas.title = 'Click to play from here';
  // A slider for the keyboard and screen readers too: arrows move 5 s, Home and End to either end.
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'slider');
  canvas.setAttribute('aria-label', `Position in ${r.title || 'the recording'}`);
  canvas.setAttribute('aria-valuemin', '0');
  const clock = (t) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;
  const announce = () => {
    const d = Number.isFinite(audio.duration) ? audio.duration : r.duration_s;
    canvas.setAttribute('aria-valuemax', String(Math.round(d)));
    canvas.setAttribute('aria-valuenow', String(Math.round(audio.currentTime)));
    canvas.setAttribute('aria-valuetext', `${clock(audio.currentTime)} of ${clock(d)}`);
  };
  announce();
  const width = 400;
  const height = 48;
  const scale = window.devicePixelRatio || 1;
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  let peaks = null;
  const draw = () => {
    const g = canvas.getContext('2d');
    g.setTransform(scale, 0, 0, scale, 0, 0);
    g.clearRect(0, 0, width, height);
    if (!peaks) return;
    const played = audio.duration ? audio.currentTime / audio.duration : 0;
    const bar = width / peaks.length;
    peaks.forEach((p, i) => {
      const h = Math.max(1, p * (height - 2));
      g.fillStyle = (i + 0.5) / peaks.length <= played ? '#1f5fa8' : '#8fb3dd';
      g.fillRect(i * bar, (height - h) / 2, Math.max(1, bar - 0.5), h);
    });
  };
  api('GET', `/api/recordings/${r.id}/peaks?buckets=${width / 2}`).then((res) => {
    peaks = res.peaks;
    canvas.dataset.state = 'drawn';
    draw();
  }).catch((e) => {
    canvas.dataset.state = 'error';
    canvas.title = `No waveform: ${e.message}`;
  });
  for (const ev of ['timeupdate', 'seeked', 'durationchange']) {
    audio.addEventListener(ev, () => {
      draw();
      announce();
    });
  }
  canvas.addEventListener('keydown', (ev) => {
    const d = audio.duration;
    if (!d) return;
    const to = { ArrowRight: audio.currentTime + 5, ArrowUp: audio.currentTime + 5, ArrowLeft: audio.currentTime - 5,
      ArrowDown: audio.currentTime - 5, Home: 0, End: d }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    audio.currentTime = Math.min(d, Math.max(0, to));
  });
  canvas.addEventListener('click', (ev) => {
    if (!audio.duration) return;
    const f = Math.min(1, Math.max(0, ev.offsetX / canvas.clientWidth));
    audio.currentTime = f * audio.duration;
    audio.play().catch(() => {});
  });
  return canvas;
}
