import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { applyMigrations } from './migrate.js';

export type Db = Database.Database;

/**
 * How long one statement waits for another process's write lock before failing with SQLITE_BUSY:
 * not at all. better-sqlite3 is synchronous, so any wait here blocks the whole event loop (every
 * request, static files included), and many requests meeting the lock at once would add their
 * waits up. The session store retries on timers instead (session-store.ts); anything else that
 * meets a lock fails at once into the 503 page.
 */
export const REQUEST_BUSY_TIMEOUT_MS = 0;
/** At start nothing is served yet, so migrations may wait longer for a lock held elsewhere. */
const STARTUP_BUSY_TIMEOUT_MS = 5000;

/** Opens (creating if needed) the SQLite file and brings its schema up to date. */
export function openDatabase(path: string, options: { busyTimeoutMs?: number } = {}): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma(`busy_timeout = ${STARTUP_BUSY_TIMEOUT_MS}`);
  // WAL lets readers (the admin page, /healthz) run while a write is in progress.
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  applyMigrations(db);
  db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? REQUEST_BUSY_TIMEOUT_MS))}`);
  return db;
}

/** Another connection holds the write lock (or a table lock): worth a short retry, then a 503. */
export function isDatabaseBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

export function isDatabaseHealthy(db: Db): boolean {
  try {
    return db.prepare('SELECT 1 AS ok').get() !== undefined;
  } catch {
    return false;
  }
}
