import type { Migration } from '../migrate.js';
import { addIdColumn } from './columns.js';

/**
 * API keys for the verification API (issue 13): only the SHA-256 of each key (unique), a hint of
 * its first characters for the admin list, the channels it may use (`sms,voice`), who made it
 * (kept null once that account is deleted), when it was last used and when it was revoked.
 */
export const apiKeys: Migration = {
  name: '016-api-keys',
  async up(db, dialect) {
    await addIdColumn(db.schema.createTable('api_keys'), dialect, 'integer')
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('key_hash', 'text', (column) => column.notNull().unique())
      .addColumn('key_hint', 'text', (column) => column.notNull())
      .addColumn('channels', 'text', (column) => column.notNull())
      .addColumn('created_by', 'integer', (column) => column.references('users.id').onDelete('set null'))
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .execute();
  },
};
