import type { Db } from '../db/open.js';

/** Remembers when each ADMIN_USERNAMES name was first seen at a start. */
export interface AdminSeedLedger {
  /** Records `name` as listed at `now` unless it was listed before; returns when it first was. */
  firstListedAt(name: string, now: Date): Date;
}

export function createSqliteAdminSeedLedger(db: Db): AdminSeedLedger {
  const insert = db.prepare(
    'INSERT INTO admin_seed_names (name, first_listed_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
  );
  const select = db.prepare('SELECT first_listed_at FROM admin_seed_names WHERE name = ?');
  return {
    firstListedAt(name, now) {
      insert.run(name, now.getTime());
      return new Date((select.get(name) as { first_listed_at: number }).first_listed_at);
    },
  };
}
