// Reads what the server's database holds, with the sqlite3 command-line tool.
import { execFileSync } from 'node:child_process';

export function query(dbPath, sql) {
  const out = execFileSync('sqlite3', ['-json', dbPath, sql], { encoding: 'utf8' }).trim();
  return out ? JSON.parse(out) : [];
}
