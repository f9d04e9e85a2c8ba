import { sql } from 'kysely';
import type { Migration } from '../migrate.js';
import { addIdColumn } from './columns.js';

/**
 * Accounts, the audit log, the codes the app makes itself and sessions. (Databases made before the
 * TypeScript migrations have the same tables from 001-initial.sql, with the username compared
 * without case by SQLite's COLLATE NOCASE; 007-username-keys replaces that rule in both.)
 */
export const initial: Migration = {
  name: '001-initial',
  async up(db, dialect) {
    await addIdColumn(db.schema.createTable('users'), dialect, 'integer')
      .addColumn('username', 'text', (column) => column.notNull().unique())
      .addColumn('password_hash', 'text', (column) => column.notNull())
      .addColumn('phone_e164', 'text', (column) => column.notNull())
      .addColumn('preferred_channel', 'text', (column) =>
        column.notNull().check(sql`preferred_channel IN ('sms', 'voice')`),
      )
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('last_login_at', 'bigint')
      .execute();

    await addIdColumn(db.schema.createTable('audit_events'), dialect, 'bigint')
      .addColumn('at', 'bigint', (column) => column.notNull())
      .addColumn('type', 'text', (column) => column.notNull())
      .addColumn('user_id', 'integer', (column) => column.references('users.id').onDelete('set null'))
      .addColumn('username', 'text')
      .addColumn('ip', 'text')
      .addColumn('detail', 'text')
      .execute();
    await db.schema.createIndex('audit_events_at').on('audit_events').column('at desc').execute();

    // Codes the app makes itself (console, SignalWire): only a keyed hash is kept.
    await db.schema
      .createTable('issued_codes')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('phone_e164', 'text', (column) => column.notNull())
      .addColumn('scope', 'text', (column) => column.notNull())
      .addColumn('code_hash', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .addColumn('used_at', 'bigint')
      .addColumn('voided_at', 'bigint')
      .execute();
    await db.schema.createIndex('issued_codes_expires_at').on('issued_codes').column('expires_at').execute();

    await db.schema
      .createTable('sessions')
      .addColumn('sid', 'text', (column) => column.primaryKey())
      .addColumn('data', 'text', (column) => column.notNull())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('sessions_expires_at').on('sessions').column('expires_at').execute();
  },
};
