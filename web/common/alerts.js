// Friends going live: a toast on every fc25 page, and a browser notification where the user turned them on (the
// permission is asked on that click, never on page load). A muted friend raises neither. Both settings are kept
// in this browser, per user.

const key = (me, what) => `fc25.${what}.${me}`;
const load = (k, fallback) => {
  try { return JSON.parse(localStorage.getItem(k)) ?? fallback; } catch { return fallback; }
};
const save = (k, v) => {
  try { localStorage.setItem(k, JSON.stringify(v)); } catch { /* storage refused: the setting lasts the page */ }
};

export class LiveAlerts {
  constructor(me) {
    this.me = me;
    this.muted = new Set(load(key(me, 'muted'), []));
    this.seen = new Set();   // sessions already announced on this page
    this.box = document.createElement('div');
    this.box.className = 'toasts';
    this.box.setAttribute('role', 'status');
    this.box.setAttribute('aria-live', 'polite');
    this.box.setAttribute('data-testid', 'toasts');
    document.body.append(this.box);
    // The toasts float over the page's bottom: while any is shown, the page gets that much room at its end, so
    // whatever they cover (on a phone, the last buttons) can still be scrolled into view.
    new ResizeObserver(() => {
      document.body.style.paddingBottom = this.box.childElementCount
        ? `calc(${this.box.offsetHeight}px + 1.5rem)` : '';
    }).observe(this.box);
  }

  isMuted(name) { return this.muted.has(name); }

  setMuted(name, muted) {
    if (muted) this.muted.add(name);
    else this.muted.delete(name);
    save(key(this.me, 'muted'), [...this.muted]);
  }

  // 'on', 'off', 'blocked' (the browser refuses) or 'unsupported'.
  notificationState() {
    if (!('Notification' in window)) return 'unsupported';
    if (Notification.permission === 'denied') return 'blocked';
    return Notification.permission === 'granted' && load(key(this.me, 'notify'), false) ? 'on' : 'off';
  }

  // On a click only: asks the browser's permission the first time.
  async setNotifications(on) {
    if (on && 'Notification' in window && Notification.permission === 'default') {
      await Notification.requestPermission();
    }
    save(key(this.me, 'notify'), on);
    return this.notificationState();
  }

  // A friend's streaming_status saying they went live.
  friendWentLive({ username, session_id: sessionId }) {
    if (this.isMuted(username) || this.seen.has(sessionId)) return;
    this.seen.add(sessionId);
    const href = `/u/${encodeURIComponent(username)}`;
    if (location.pathname !== href) this.toast(username, href);
    if (this.notificationState() === 'on') {
      try {
        const n = new Notification(`${username} is live`, {
          body: 'Click to listen on fc25.', tag: `fc25-live-${sessionId}`, icon: '/static/favicon.svg' });
        n.onclick = () => { window.focus(); location.assign(href); n.close(); };
      } catch { /* a browser that only notifies from a service worker: the toast said it */ }
    }
  }

  toast(username, href) {
    const t = document.createElement('div');
    t.className = 'toast';
    t.setAttribute('data-testid', `toast-${username}`);
    const link = document.createElement('a');
    link.href = href;
    link.textContent = `${username} is live — listen`;
    const close = document.createElement('button');
    close.type = 'button';
    close.textContent = '×';
    close.setAttribute('aria-label', `Dismiss: ${username} is live`);
    close.addEventListener('click', () => t.remove());
    t.append(link, close);
    this.box.append(t);
    setTimeout(() => t.remove(), 15000);
  }
}
