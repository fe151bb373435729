// Recordings made without streaming: a WAV file (and optionally its raw twin) under the server's data directory,
// and the rows a finished stream leaves, written into its database.
import fs from 'node:fs';
import path from 'node:path';

import { query } from './sqlite.mjs';

// A 16-bit mono 48 kHz WAV of `seconds` of a tone at `amplitude` (0..1).
export function toneWav(seconds, amplitude = 0.3, hz = 440) {
  const n = Math.round(seconds * 48000);
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVE', 8); b.write('fmt ', 12);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22); b.writeUInt32LE(48000, 24);
  b.writeUInt32LE(96000, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34); b.write('data', 36);
  b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * hz * i) / 48000)), 44 + 2 * i);
  return b;
}

// A 16-bit mono 48 kHz WAV of `seconds` of steady white noise of RMS `rms` (0..1): a fan, a busy room.
export function noiseWav(seconds, rms = 0.03, seed = 1) {
  const n = Math.round(seconds * 48000);
  const b = toneWav(0);
  const out = Buffer.alloc(44 + 2 * n);
  b.copy(out, 0, 0, 44);
  out.writeUInt32LE(36 + 2 * n, 4);
  out.writeUInt32LE(2 * n, 40);
  let x = seed >>> 0;
  const uniform = () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return (x + 0.5) / 4294967296; };
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());  // Box-Muller
    out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(g * rms * 32767))), 44 + 2 * i);
  }
  return out;
}

// Adds `count` ended sessions of `username` with a recording each (created_at `createdAt`, or now; `bytes` per row,
// default the file's size). With `files`, writes each file (and with `raw`, its _raw.wav twin). Returns the rows'
// recording ids, oldest first.
// Two statements whatever the count: each query runs a command-line client synchronously, and a test that held its
// event loop for hundreds of them (psql is slow to start) would find the server had closed its idle keep-alive
// connection meanwhile, and its next request fail on that socket.
export function addRecordings(server, username, { count = 1, createdAt = Date.now(), bytes, files = true, raw = false,
  seconds = 1 } = {}) {
  const [{ id: userId }] = query(server.dbPath, `SELECT id FROM users WHERE username = '${username}'`);
  const wav = toneWav(seconds);
  const rawWav = toneWav(seconds, 0.3, 220);
  // Ids grow in the order the rows go in; RETURNING itself promises no order.
  const ascending = (out) => out.map((r) => r.id).sort((a, b) => a - b);
  const sessions = ascending(query(server.dbPath, `INSERT INTO stream_sessions (user_id, client_id, started_at,
    ended_at, end_reason) VALUES ${Array.from({ length: count }, () => `(${userId}, 'seeded', ${createdAt - 1000},
    ${createdAt}, 'user')`).join(', ')} RETURNING id`));
  const rels = sessions.map((session) => `streamed_audios/${username}_${session}.wav`);
  if (files) {
    sessions.forEach((session, i) => {
      fs.writeFileSync(path.join(server.dataDir, rels[i]), wav);
      if (raw) fs.writeFileSync(path.join(server.dataDir, `streamed_audios/${username}_${session}_raw.wav`), rawWav);
    });
  }
  return ascending(query(server.dbPath, `INSERT INTO stream_recordings (session_id, user_id, path, duration_ms, bytes,
    created_at) VALUES ${sessions.map((session, i) => `(${session}, ${userId}, '${rels[i]}', ${seconds * 1000},
    ${bytes ?? wav.length}, ${createdAt})`).join(', ')} RETURNING id`));
}
