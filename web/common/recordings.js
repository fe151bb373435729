// A list of recordings with a player each (the server answers Range requests, so the player can seek) and a
// waveform picture of the whole recording: click it to jump there; the part already played is drawn darker.
import { api } from '/static/common/api.js';

const fmtDuration = (s) => {
  const t = Math.round(s);
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
};
const fmtSize = (b) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(b / 1024))} KB`);

export function renderRecordings(list, recordings, { onDelete } = {}) {
  list.replaceChildren();
  if (!recordings.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No recordings yet.';
    list.append(li);
    return;
  }
  for (const r of recordings) {
    const li = document.createElement('li');
    li.className = 'recording';
    li.dataset.testid = `recording-${r.id}`;
    li.setAttribute('data-testid', `recording-${r.id}`);
    li.dataset.duration = String(r.duration_s);
    const info = document.createElement('span');
    info.textContent = `${new Date(r.started_at).toLocaleString()} · ${fmtDuration(r.duration_s)} · ${fmtSize(r.bytes)}`;
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
    li.append(info, audio, waveform(r, audio));
    if (r.can_delete && onDelete) {
      const del = document.createElement('button');
      del.type = 'button';
      del.textContent = 'Delete';
      del.setAttribute('data-testid', `delete-recording-${r.id}`);
      del.addEventListener('click', () => {
        if (confirm('Delete this recording? This cannot be undone.')) onDelete(r).catch(() => {});
      });
      li.append(del);
    }
    list.append(li);
  }
}

function waveform(r, audio) {
  const canvas = document.createElement('canvas');
  canvas.className = 'waveform';
  canvas.setAttribute('data-testid', `waveform-${r.id}`);
  canvas.title = 'Click to play from here';
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
  audio.addEventListener('timeupdate', draw);
  audio.addEventListener('seeked', draw);
  canvas.addEventListener('click', (ev) => {
    if (!audio.duration) return;
    const f = Math.min(1, Math.max(0, ev.offsetX / canvas.clientWidth));
    audio.currentTime = f * audio.duration;
    audio.play().catch(() => {});
  });
  return canvas;
}
