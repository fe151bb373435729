// Reads what the server's database holds: the SQLite file with the sqlite3 command-line tool, or, in the
// PostgreSQL pass of the tests, the database that stands for that file (tests/support/postgres.mjs).
import { execFileSync } from 'node:child_process';

import { databaseFor, psql, testPostgresUrl } from './postgres.mjs';

export function query(dbPath, sql) {
  if (testPostgresUrl) return psql(databaseFor(dbPath), sql);
  const out = execFileSync('sqlite3', ['-cmd', '.timeout 5000', '-json', dbPath, sql], { encoding: 'utf8' }).trim();
  return out ? JSON.parse(out) : [];
}
