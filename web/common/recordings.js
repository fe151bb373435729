// A list of recordings with a player each (the server answers Range requests, so the player can seek).
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
    const audio = document.createElement('audio');
    audio.controls = true;
    audio.preload = 'metadata';
    audio.src = r.url;
    li.append(info, audio);
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
