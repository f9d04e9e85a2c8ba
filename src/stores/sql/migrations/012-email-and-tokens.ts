import type { Migration } from '../migrate.js';

/**
 * Email addresses and one-time links (issue 11).
 * - `email` is the account's verified address (null: none); `pending_email` an address given but
 *   not yet proven by its link. A new address replaces the old one only once proven, so a typo
 *   never costs the person the address that can reset their password.
 * - `email_key` (the address lower-cased) is unique among verified addresses: one mailbox, one
 *   account, which is what lets /forgot find an account by its address.
 * - `audit_events_user_at` serves each person's own security log.
 * - `one_time_tokens` holds the links' tokens as SHA-256 digests only: a copy of the database
 *   opens no link.
 */
export const emailAndTokens: Migration = {
  name: '012-email-and-tokens',
  async up(db) {
    await db.schema.alterTable('users').addColumn('email', 'text').execute();
    await db.schema.alterTable('users').addColumn('email_key', 'text').execute();
    await db.schema.alterTable('users').addColumn('email_verified_at', 'bigint').execute();
    await db.schema.alterTable('users').addColumn('pending_email', 'text').execute();
    await db.schema.createIndex('users_email_key').on('users').column('email_key').unique().execute();

    await db.schema
      .createTable('one_time_tokens')
      .addColumn('token_hash', 'text', (column) => column.primaryKey())
      .addColumn('purpose', 'text', (column) => column.notNull())
      .addColumn('user_id', 'integer', (column) =>
        column.notNull().references('users.id').onDelete('cascade'),
      )
      .addColumn('detail', 'text')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .addColumn('used_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('one_time_tokens_user_purpose')
      .on('one_time_tokens')
      .columns(['user_id', 'purpose'])
      .execute();
    await db.schema
      .createIndex('one_time_tokens_expires_at')
      .on('one_time_tokens')
      .column('expires_at')
      .execute();
    // "Your security log": one account's events, newest first.
    await db.schema
      .createIndex('audit_events_user_at')
      .on('audit_events')
      .columns(['user_id', 'at'])
      .execute();
  },
};
