import type { Migration } from '../migrate.js';

/**
 * When each account proved its phone number with a code (issue 11): a new account gives a number
 * and must enter a code sent to it before it can log in. Accounts made before this proved theirs
 * at every login since, so they count as proven from when they were made.
 */
export const provenPhones: Migration = {
  name: '011-proven-phones',
  async up(db) {
    // 0 by default: an instance still running the code before this (a rolling deploy) makes
    // accounts that log in with login codes; they count as proven. New code writes null itself.
    await db.schema
      .alterTable('users')
      .addColumn('phone_verified_at', 'bigint', (column) => column.defaultTo(0))
      .execute();
    await db
      .updateTable('users')
      .set((eb) => ({ phone_verified_at: eb.ref('created_at') }))
      .execute();
    // Housekeeping looks for accounts never proven, oldest first.
    await db.schema
      .createIndex('users_unproven_created')
      .on('users')
      .columns(['phone_verified_at', 'created_at'])
      .execute();
  },
};
