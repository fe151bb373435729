// fc25-send, the WebRTC load client (tools/send), run by tests: each run's report lines (one JSON object per
// broadcaster or listener, then a summary).
import { execFile } from 'node:child_process';
import path from 'node:path';

import { repoRoot } from './server.mjs';

export const sendBin = process.env.FC25_SEND ||
  path.join(process.env.FC25_BUILD_DIR || path.join(repoRoot, 'build'), 'tools/send/fc25-send');

// Runs fc25-send against `server` as the users of `password`; resolves its report lines, rejects when it reported
// nothing (naming its error output).
export function runSend(server, password, args, timeoutMs = 180000) {
  return new Promise((resolve, reject) => {
    execFile(sendBin, ['--port', String(server.port), '--password', password, ...args],
      { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
        if (!lines.length) return reject(new Error(`fc25-send failed: ${err?.message}\n${stderr}`));
        resolve(lines);
      });
  });
}
