import type { Migration } from '../migrate.js';

/**
 * A destroyed session id (logout, or replaced by a new id) is remembered until that session's own
 * expiry, so that a request still in flight with the old id can never write it back.
 */
export const sessionTombstones: Migration = {
  name: '003-session-tombstones',
  async up(db) {
    await db.schema
      .createTable('session_tombstones')
      .addColumn('sid', 'text', (column) => column.primaryKey())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema
      .createIndex('session_tombstones_expires_at')
      .on('session_tombstones')
      .column('expires_at')
      .execute();
  },
};
