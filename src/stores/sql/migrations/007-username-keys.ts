import type { Kysely } from 'kysely';
import { usernameKeyOf } from '../../../users/username.js';
import type { Migration } from '../migrate.js';

/**
 * Usernames unique after NFKC and case folding, in both databases: a `username_key` column, computed
 * in code (usernameKeyOf) and unique by index, replaces SQLite's COLLATE NOCASE.
 *
 * Existing rows are backfilled. Two existing accounts whose names only now count as the same (say
 * "alice" and a "ａｌｉｃｅ" stored before registration normalised names): the older account keeps
 * the key, so "alice" still logs into it; each newer one gets "<key>#<id>" ("alice#7"), which no
 * registration can take (a username has no "#"), and it logs in under that name. Nothing is
 * deleted or renamed: `username`, what pages show, stays as it was.
 *
 * The column is NOT NULL with a default of '' only because SQLite cannot add a NOT NULL column
 * without one; the stores always write the key, and a second row left at '' would break the index.
 */
export const usernameKeys: Migration = {
  name: '007-username-keys',
  async up(db) {
    await db.schema
      .alterTable('users')
      .addColumn('username_key', 'text', (column) => column.notNull().defaultTo(''))
      .execute();
    await backfillUsernameKeys(db);
    await db.schema
      .createIndex('users_username_key_unique')
      .on('users')
      .column('username_key')
      .unique()
      .execute();
  },
};

async function backfillUsernameKeys(db: Kysely<any>) {
  const users: Array<{ id: number; username: string }> = await db
    .selectFrom('users')
    .select(['id', 'username'])
    .orderBy('id')
    .execute();
  const taken = new Set<string>();
  for (const { id, username } of users) {
    let key = usernameKeyOf(username);
    while (taken.has(key)) key = `${key}#${id}`;
    taken.add(key);
    await db.updateTable('users').set({ username_key: key }).where('id', '=', id).execute();
  }
}
