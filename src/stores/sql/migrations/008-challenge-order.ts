import type { Migration } from '../migrate.js';

/**
 * Orders challenges of one account and scope sent in the same millisecond, the newest last. SQLite's
 * rowid did it before; PostgreSQL has none. The store numbers each new challenge one above the
 * account's highest in the scope. Challenges from before this migration all have 0: they only tie
 * if two were sent in the same millisecond, and they expire within minutes anyway.
 */
export const challengeOrder: Migration = {
  name: '008-challenge-order',
  async up(db) {
    await db.schema
      .alterTable('challenges')
      .addColumn('seq', 'bigint', (column) => column.notNull().defaultTo(0))
      .execute();
  },
};
