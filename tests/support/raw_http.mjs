// Exact bytes to the server over one TCP connection: requests no well-behaved client would send (invalid UTF-8 in
// paths and headers, several requests on one keep-alive connection), and the responses parsed from the wire.
import net from 'node:net';

// Sends `requests` (Buffers or strings, latin1 = one byte per char) one after another on one connection, each after
// the previous response; resolves with the parsed responses. A request the server answers by closing ends the list.
export async function rawExchange(port, requests, { timeoutMs = 5000 } = {}) {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake = () => {};
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); wake(); });
  sock.on('end', () => { ended = true; wake(); });
  sock.on('close', () => { ended = true; wake(); });
  sock.on('error', () => { ended = true; wake(); });
  const responses = [];
  const deadline = Date.now() + timeoutMs;
  for (const r of requests) {
    const bytes = typeof r === 'string' ? Buffer.from(r, 'latin1') : r;
    sock.write(bytes);
    // An answer to HEAD has a header only, whatever its Content-Length says.
    const headOnly = bytes.subarray(0, 5).toString('latin1') === 'HEAD ';
    for (;;) {
      const res = parseResponse(buf, headOnly);
      if (res) {
        buf = buf.subarray(res.length);
        responses.push(res);
        break;
      }
      if (ended) { sock.destroy(); return responses; }
      if (Date.now() > deadline) { sock.destroy(); throw new Error(`no complete response within ${timeoutMs} ms`); }
      await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 50); });
    }
  }
  sock.destroy();
  return responses;
}

// One complete HTTP/1.1 response at the start of `buf` (Content-Length bodies only), or null.
function parseResponse(buf, headOnly = false) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const [, status] = head[0].split(' ');
  const headers = {};
  const setCookies = [];
  for (const line of head.slice(1)) {
    const c = line.indexOf(':');
    const k = line.slice(0, c).trim().toLowerCase();
    const v = line.slice(c + 1).trim();
    if (k === 'set-cookie') setCookies.push(v);
    headers[k] = v;
  }
  const len = headOnly ? 0 : Number(headers['content-length'] ?? 0);
  if (buf.length < end + 4 + len) return null;
  const bodyBytes = buf.subarray(end + 4, end + 4 + len);
  const text = bodyBytes.toString('utf8');
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: Number(status), headers, setCookies, bodyBytes, text, body, length: end + 4 + len };
}

// A request as bytes: `target` and header values are latin1 strings (so '\xff' is the byte 0xff).
export function rawRequest(method, target, { headers = {}, body } = {}) {
  const b = body === undefined ? undefined : (typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
  let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (b !== undefined) head += `Content-Length: ${b.length}\r\n`;
  head += '\r\n';
  return b === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), b]);
}
