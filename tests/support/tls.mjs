// Self-signed certificates for HTTPS tests, made with the openssl command (never downloaded, never kept).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { tempDir } from './server.mjs';

// makeCertificate({names, dir}) -> {cert, key, dir, fingerprint256}: a fresh RSA key and a certificate for `names`
// (IP addresses or DNS names; the first is the subject) valid for a day, as PEM files in `dir`.
export function makeCertificate({ names = ['127.0.0.1', 'localhost'], dir = tempDir('fc25-tls-'), prefix = 'server' } = {}) {
  const cert = path.join(dir, `${prefix}.crt`);
  const key = path.join(dir, `${prefix}.key`);
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', key,
    '-out', cert, '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`], { encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is not installed (scripts/setup.sh installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  const { fingerprint256 } = new crypto.X509Certificate(fs.readFileSync(cert));
  return { cert, key, dir, fingerprint256 };
}
