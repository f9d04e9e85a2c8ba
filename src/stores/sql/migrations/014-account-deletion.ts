import { sql, type Kysely } from 'kysely';
import { usernameKeyOf } from '../../../users/username.js';
import type { Migration } from '../migrate.js';

/**
 * Deleting an account for good (issue 11).
 *
 * - `audit_events.username_key`: usernameKeyOf(username), so that a deletion finds every event
 *   that carries the account's name however it was typed ("ALICE", "ａｌｉｃｅ" at a failed login),
 *   and rewrites it under a pseudonym. Existing events are backfilled.
 * - `user_id_floor`: the highest id a deleted account had, raised by a trigger on every deletion
 *   of a user row (in the deleting statement itself, so nothing can come between). SQLite gives a
 *   new row the highest id plus one, so deleting the newest account would hand its id to the next
 *   sign-up: the admin seed ledger's "ids never step back" would let whoever registers a listed
 *   name next be made an admin, and any session slot or cookie still keyed by that id would name
 *   the stranger. On SQLite a new account's id is taken above this floor
 *   (src/stores/sql/user-store.ts). PostgreSQL's identity never steps back by itself: the table
 *   has its one row there too, never raised.
 */
export const accountDeletion: Migration = {
  name: '014-account-deletion',
  async up(db, dialect) {
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
    await db.insertInto('user_id_floor').values({ singleton: 1, highest_deleted_id: 0 }).execute();
    if (dialect === 'sqlite') {
      await sql`CREATE TRIGGER users_deleted_raise_id_floor AFTER DELETE ON users
        BEGIN
          UPDATE user_id_floor SET highest_deleted_id = max(highest_deleted_id, OLD.id) WHERE singleton = 1;
        END`.execute(db);
    }
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
