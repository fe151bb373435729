// An HTTP client with a cookie jar that speaks fc25's CSRF protocol, and a presence-socket wrapper (ws).
import WebSocket from 'ws';

let counter = 0;
export function uniqueName(prefix = 'u') {
  counter += 1;
  return `${prefix}${process.pid % 10000}${counter}${Math.floor(Math.random() * 1000)}`.slice(0, 30);
}

export class Client {
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
    this.cookies = new Map();
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  absorb(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const k = pair.slice(0, eq).trim();
      const v = pair.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || v === '') this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
  }

  async csrf() {
    if (!this.cookies.has('fc25_csrf')) {
      const r = await this.request('GET', '/api/csrf');
      if (r.status !== 200) throw new Error(`GET /api/csrf answered ${r.status}`);
    }
    return this.cookies.get('fc25_csrf');
  }

  // opts: {json, form, raw, contentType, csrf: false | 'wrong' | token, headers}
  async request(method, path, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    if (method !== 'GET' && opts.csrf !== false && path !== '/api/csrf') {
      headers['X-CSRF-Token'] = opts.csrf === 'wrong' ? 'f'.repeat(64) : (opts.csrf || await this.csrf());
    }
    let body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['Content-Type'] = 'application/json';
    } else if (opts.form !== undefined) {
      body = new URLSearchParams(opts.form).toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    } else if (opts.raw !== undefined) {
      body = opts.raw;
    }
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
    const cookie = this.cookieHeader();
    if (cookie) headers.Cookie = cookie;
    const res = await fetch(this.baseUrl + path, { method, headers, body, redirect: 'manual' });
    this.absorb(res);
    const text = await res.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  get(path, opts) { return this.request('GET', path, opts); }
  post(path, json, opts = {}) { return this.request('POST', path, json === undefined ? opts : { ...opts, json }); }
  del(path, opts) { return this.request('DELETE', path, opts); }

  async register(username, password = 'correct horse') {
    const r = await this.post('/api/auth/register', { username, password });
    if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${r.text}`);
    this.username = username;
    return r;
  }

  async login(username, password = 'correct horse') {
    const r = await this.post('/api/auth/login', { username, password });
    if (r.status === 200) this.username = username;
    return r;
  }

  openPresence({ clientId = uniqueName('tab'), origin, cookie } = {}) {
    const wsUrl = this.baseUrl.replace(/^http/, 'ws') + `/ws/presence/?client_id=${clientId}`;
    const headers = { Origin: origin ?? this.baseUrl };
    const c = cookie ?? this.cookieHeader();
    if (c) headers.Cookie = c;
    return new PresenceSocket(new WebSocket(wsUrl, { headers }), clientId);
  }
}

export class PresenceSocket {
  constructor(ws, clientId) {
    this.ws = ws;
    this.clientId = clientId;
    this.messages = [];
    this.waiters = [];
    this.opened = new Promise((resolve, reject) => {
      ws.on('open', resolve);
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => {
          const err = new Error(`upgrade refused: ${res.statusCode} ${body}`);
          err.status = res.statusCode;
          try { err.body = JSON.parse(body); } catch { err.body = body; }
          reject(err);
        });
      });
      ws.on('error', reject);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    // Events are delivered from the first snapshot on (the server subscribes the socket, then sends it).
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.opened.catch(reject);
    });
    this.ready.catch(() => {}); // a refused socket is reported through `opened`
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      msg.receivedAt = performance.now();
      this.messages.push(msg);
      if (msg.type === 'snapshot') this.resolveReady(msg);
      for (const w of [...this.waiters]) {
        if (w.pred(msg)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(msg);
        }
      }
    });
  }

  // The next (or an already received, not yet taken) message matching pred.
  next(pred = () => true, timeoutMs = 3000) {
    const i = this.messages.findIndex((m) => !m.taken && pred(m));
    if (i >= 0) {
      this.messages[i].taken = true;
      return Promise.resolve(this.messages[i]);
    }
    return new Promise((resolve, reject) => {
      const w = { pred: (m) => { if (pred(m)) { m.taken = true; return true; } return false; }, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching presence message within ${timeoutMs} ms; got: ${JSON.stringify(this.messages)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  close() { this.ws.close(); return this.closed; }
  terminate() { this.ws.terminate(); return this.closed; }
}

export async function makeFriends(a, b) {
  const r = await a.post('/api/friends/requests', { username: b.username });
  if (r.status !== 201) throw new Error(`friend request ${a.username}->${b.username}: ${r.status} ${r.text}`);
  const acc = await b.post(`/api/friends/requests/${r.body.request.id}/accept`);
  if (acc.status !== 200) throw new Error(`accept: ${acc.status} ${acc.text}`);
}

// alice and bob, registered on the server at `baseUrl` (logged in) and friends.
export async function twoFriends(baseUrl) {
  const alice = new Client(baseUrl);
  await alice.register(uniqueName('alice'));
  const bob = new Client(baseUrl);
  await bob.register(uniqueName('bob'));
  await makeFriends(alice, bob);
  return { alice, bob };
}
