// How long a stream has run, from the server's started_at, corrected for the difference between this
// browser's clock and the server's.
let skewMs = 0; // server clock minus local clock

export function noteServerTime(serverNowIso) {
  if (serverNowIso) skewMs = Date.parse(serverNowIso) - Date.now();
}

export function formatElapsed(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

export function elapsedSince(startedAtIso) {
  return Date.now() + skewMs - Date.parse(startedAtIso);
}

// Keeps every element with data-started-at showing its elapsed time; one ticker for the whole page.
export function startTicker(root = document) {
  const tick = () => {
    for (const el of root.querySelectorAll('[data-started-at]')) {
      el.textContent = formatElapsed(elapsedSince(el.dataset.startedAt));
    }
  };
  tick();
  return setInterval(tick, 250);
}
