// The presence socket: status pushes from the server. Reconnects with backoff; while it is down, the page's
// fallback poll (every 30 s) keeps the status from going stale, and stops as soon as the socket is back.
import { clientId } from './clientid.js';

export class Presence {
  constructor({ onMessage, onState, poll }) {
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.poll = poll;
    this.backoff = 500;
    this.pollTimer = null;
    this.closedByPage = false;
    this.connect();
    window.addEventListener('pagehide', () => {
      this.closedByPage = true;
    });
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws/presence/?client_id=${clientId}`);
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.stopPolling();
      this.onState(true);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.closedByPage) return;
      this.onState(false);
      this.startPolling();
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    };
  }

  // Sends a message on the socket; false when it is not open.
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  startPolling() {
    if (this.pollTimer || !this.poll) return;
    this.pollTimer = setInterval(() => this.poll().catch(() => {}), 30000);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
