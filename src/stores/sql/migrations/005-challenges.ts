import { sql } from 'kysely';
import type { Migration } from '../migrate.js';

/**
 * One row per code sent: the session holds only its id, so every request (and every instance)
 * reads the same attempts and the same open/closed state.
 */
export const challenges: Migration = {
  name: '005-challenges',
  async up(db) {
    await db.schema
      .createTable('challenges')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('user_id', 'integer', (column) =>
        column.notNull().references('users.id').onDelete('cascade'),
      )
      .addColumn('scope', 'text', (column) => column.notNull())
      .addColumn('phone_e164', 'text', (column) => column.notNull())
      .addColumn('channel', 'text', (column) => column.notNull().check(sql`channel IN ('sms', 'voice')`))
      .addColumn('provider', 'text', (column) => column.notNull())
      .addColumn('handle', 'text')
      .addColumn('sent_at', 'bigint', (column) => column.notNull())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .addColumn('wrong_attempts', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('closed_at', 'bigint')
      .addColumn('close_reason', 'text')
      .execute();
    await db.schema
      .createIndex('challenges_user_scope')
      .on('challenges')
      .columns(['user_id', 'scope', 'sent_at desc'])
      .execute();
    await db.schema.createIndex('challenges_expires_at').on('challenges').column('expires_at').execute();
  },
};
