import type { Migration } from '../migrate.js';

/**
 * Admin rights belong to an account, granted by the operator (npm run admin -- grant USERNAME) or
 * seeded at start from ADMIN_USERNAMES for accounts that already exist; never to a name that
 * whoever registers first would inherit.
 */
export const adminRole: Migration = {
  name: '002-admin-role',
  async up(db) {
    await db.schema
      .alterTable('users')
      .addColumn('is_admin', 'integer', (column) => column.notNull().defaultTo(0))
      .execute();
  },
};
