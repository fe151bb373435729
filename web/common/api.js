// fetch wrapper for the fc25 API: JSON in and out, the CSRF token on every state-changing call, and errors
// turned into exceptions carrying the server's message.
let csrfToken = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrfToken(token) {
  csrfToken = token;
}

export async function csrf() {
  if (!csrfToken) {
    const r = await fetch('/api/csrf', { credentials: 'same-origin' });
    csrfToken = (await r.json()).csrf_token;
  }
  return csrfToken;
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = await csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: 'http_' + res.status, message: res.statusText };
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

// The current user, or null when not logged in.
export async function me() {
  try {
    const m = await api('GET', '/api/me');
    setCsrfToken(m.csrf_token);
    return m;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}
