// A real PostgreSQL for tests (tests/support/postgres.sh: initdb in a temp dir, a free loopback port, run as the
// `postgres` user when root), and the per-server databases of the PostgreSQL pass of the integration tests.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'postgres.sh');
const clusters = new Set();

// Stops the cluster in `dir` (whatever state it is in) and removes the temp dir that held it.
function removeCluster(dir) {
  spawnSync(script, ['down', dir]);
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}
process.on('exit', () => { for (const dir of clusters) removeCluster(dir); });

// startPostgres() -> { url, stop(), start(), down() }: a cluster of its own, removed when the process exits.
export function startPostgres() {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fc25-pg-')), 'cluster');
  const r = spawnSync(script, ['up', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    removeCluster(dir);
    throw new Error(`PostgreSQL did not start: ${r.stderr}${r.stdout}`);
  }
  clusters.add(dir);
  const url = r.stdout.trim();
  const run = (cmd) => {
    const out = spawnSync(script, [cmd, dir], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`postgres.sh ${cmd} failed: ${out.stderr}`);
  };
  return {
    url,
    stop() { run('stop'); },     // fast shutdown: sessions are cut, the data stays
    start() { run('start'); },
    down() {   // the cluster and the temp dir that held it
      clusters.delete(dir);
      removeCluster(dir);
    },
  };
}

// psql against `url`: the rows of a SELECT as objects (booleans as 1/0, as SQLite gives them), [] otherwise.
export function psql(url, sql) {
  const returning = /\bRETURNING\b/i.test(sql);
  const select = returning || /^\s*(SELECT|WITH)\b/i.test(sql);
  const wrapped = returning ? `WITH t AS (${sql}) SELECT coalesce(json_agg(t), '[]') FROM t`
    : select ? `SELECT coalesce(json_agg(t), '[]') FROM (${sql}) t` : sql;
  const out = execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', wrapped],
    { encoding: 'utf8' }).trim();
  if (!select) return [];
  return JSON.parse(out).map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) =>
    [k, typeof v === 'boolean' ? Number(v) : v])));
}

// With FC25_TEST_POSTGRES_URL set, servers started by tests use PostgreSQL instead of their SQLite file: one
// database per SQLite path a test names (servers given the same path share it, as they would share the file).
export const testPostgresUrl = process.env.FC25_TEST_POSTGRES_URL || '';

const databases = new Map();   // SQLite path -> URL of its database, made once
export function databaseFor(dbPath) {
  if (databases.has(dbPath)) return databases.get(dbPath);
  const name = `t${crypto.createHash('sha1').update(dbPath).digest('hex').slice(0, 20)}`;
  const url = new URL(testPostgresUrl);
  const exists = psql(testPostgresUrl, `SELECT 1 AS x FROM pg_database WHERE datname = '${name}'`).length > 0;
  if (!exists) {
    try {
      psql(testPostgresUrl, `CREATE DATABASE ${name}`);
    } catch (e) {
      if (!/already exists/.test(String(e.stderr || e.message))) throw e;
    }
  }
  url.pathname = `/${name}`;
  databases.set(dbPath, url.toString());
  return url.toString();
}
