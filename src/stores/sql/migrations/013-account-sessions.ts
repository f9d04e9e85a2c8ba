import { sql } from 'kysely';
import type { Migration } from '../migrate.js';

/**
 * Sessions by account, and accounts an admin disabled (issue 11).
 *
 * - sessions.user_id: the account a session is signed in as (null for one that is not), written by
 *   the store with every save, so an account's sessions can be listed and ended (the admin's "end
 *   all sessions" and "disable", the person's list of sessions). Sessions kept from before are
 *   given theirs from their data, so a disable right after the upgrade ends them too.
 * - users.disabled_at: when an admin disabled the account; null while it may log in.
 */
export const accountSessions: Migration = {
  name: '013-account-sessions',
  async up(db, dialect) {
    await db.schema.alterTable('sessions').addColumn('user_id', 'integer').execute();
    const userIdInData =
      dialect === 'sqlite'
        ? sql`json_extract(data, '$.signedIn.userId')`
        : sql`(data::jsonb -> 'signedIn' ->> 'userId')::integer`;
    await db
      .updateTable('sessions')
      .set({ user_id: userIdInData })
      .where(sql<boolean>`${userIdInData} IS NOT NULL`)
      .execute();
    await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute();

    await db.schema.alterTable('users').addColumn('disabled_at', 'bigint').execute();
  },
};
