import type { Kysely } from 'kysely';
import { usernameKeyOf } from '../../../users/username.js';
import type { Migration } from '../migrate.js';

/**
 * Deleting an account for good (issue 11).
 *
 * - `audit_events.username_key`: usernameKeyOf(username), so that a deletion finds every event
 *   that carries the account's name however it was typed ("ALICE", "ａｌｉｃｅ" at a failed login),
 *   and rewrites it under a pseudonym. Existing events are backfilled.
 * - `user_id_floor`: the highest id a deleted account had. SQLite gives a new row the highest id
 *   plus one, so deleting the newest account would hand its id to the next sign-up: the admin seed
 *   ledger's "ids never step back" would let whoever registers a listed name next be made an admin,
 *   and any stray session slot or cookie keyed by that id would name the stranger. On SQLite a new
 *   account's id is taken above this floor (src/stores/sql/user-store.ts); PostgreSQL's sequence
 *   never steps back by itself, and the table stays empty there.
 */
export const accountDeletion: Migration = {
  name: '014-account-deletion',
  async up(db) {
    await db.schema.alterTable('audit_events').addColumn('username_key', 'text').execute();
    await backfillUsernameKeys(db);
    await db.schema
      .createIndex('audit_events_username_key')
      .on('audit_events')
      .column('username_key')
      .execute();

    await db.schema
      .createTable('user_id_floor')
      // One row at most: its key is always 1.
      .addColumn('singleton', 'integer', (column) => column.primaryKey())
      .addColumn('highest_deleted_id', 'bigint', (column) => column.notNull())
      .execute();
  },
};

async function backfillUsernameKeys(db: Kysely<any>) {
  const names: Array<{ username: string }> = await db
    .selectFrom('audit_events')
    .select('username')
    .distinct()
    .where('username', 'is not', null)
    .execute();
  for (const { username } of names) {
    await db
      .updateTable('audit_events')
      .set({ username_key: usernameKeyOf(username) })
      .where('username', '=', username)
      .execute();
  }
}
