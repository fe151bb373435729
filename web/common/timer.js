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

// Keeps every element with data-started-at showing its elapsed time. One ticker for the page, woken just after
// the next whole second of any timer, so the display is never a second behind.
export function startTicker(root = document) {
  let handle = null;
  const tick = () => {
    let wait = 1000;
    for (const el of root.querySelectorAll('[data-started-at]')) {
      const ms = elapsedSince(el.dataset.startedAt);
      const text = formatElapsed(ms);
      if (el.textContent !== text) el.textContent = text;
      wait = Math.min(wait, 1000 - (((ms % 1000) + 1000) % 1000));
    }
    handle = setTimeout(tick, wait + 5);
  };
  tick();
  // A timer that appears (going live, a friend going live) is shown at once, not at the next tick.
  new MutationObserver(() => { clearTimeout(handle); tick(); })
    .observe(root.body || root, { subtree: true, attributes: true, attributeFilter: ['data-started-at'], childList: true });
  return () => clearTimeout(handle);
}
