import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

/**
 * The SQLite migrations and runner as they were before the TypeScript migrations (src/stores/sql/):
 * databases people made with them must keep working. Tests build such a database with this and
 * then open it with the new runner. Kept exactly as it ran, .sql file names included.
 */
export const LEGACY_MIGRATIONS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'legacy-sqlite-migrations',
);

/**
 * Applies migrations/NNN-name.sql in order, each in its own transaction, recording each in
 * schema_migrations. `skip` leaves some out, as a database made before they existed lacks them.
 */
export function applyLegacyMigrations(
  db: Database.Database,
  dir = LEGACY_MIGRATIONS_DIR,
  skip: readonly string[] = [],
): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL
  )`);
  const applied = new Set(
    db
      .prepare('SELECT name FROM schema_migrations')
      .all()
      .map((row) => (row as { name: string }).name),
  );
  const pending = readdirSync(dir)
    .filter((file) => /^\d{3}-[\w-]+\.sql$/.test(file))
    .sort()
    .filter((file) => !applied.has(file) && !skip.includes(file));

  const record = db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)');
  for (const file of pending) {
    const sql = readFileSync(join(dir, file), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      record.run(file, Date.now());
    })();
  }
  return pending;
}

/**
 * A database file as the old site made it (WAL, foreign keys, every legacy migration applied but
 * those named in `skip`, say "004-fraud-guard.sql" for a site from before the fraud guard).
 */
export function createLegacySqliteDatabase(
  path: string,
  options: { skip?: readonly string[] } = {},
): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  applyLegacyMigrations(db, LEGACY_MIGRATIONS_DIR, options.skip);
  return db;
}
