import type { Db } from '../db/open.js';

/** When each ADMIN_USERNAMES name was first seen at a start, and the newest account id then. */
export interface FirstListing {
  at: Date;
  lastUserIdThen: number;
}

export interface AdminSeedLedger {
  /** Records `name` as listed now unless it was listed before; returns its first listing. */
  firstListing(name: string, now: Date): FirstListing;
}

export function createSqliteAdminSeedLedger(db: Db): AdminSeedLedger {
  const insert = db.prepare(
    `INSERT INTO admin_seed_names (name, first_listed_at, last_user_id_then)
     VALUES (?, ?, (SELECT COALESCE(MAX(id), 0) FROM users))
     ON CONFLICT (name) DO NOTHING`,
  );
  const select = db.prepare('SELECT first_listed_at, last_user_id_then FROM admin_seed_names WHERE name = ?');
  return {
    firstListing(name, now) {
      insert.run(name, now.getTime());
      const row = select.get(name) as { first_listed_at: number; last_user_id_then: number };
      return { at: new Date(row.first_listed_at), lastUserIdThen: row.last_user_id_then };
    },
  };
}
