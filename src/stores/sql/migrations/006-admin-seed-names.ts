import type { Migration } from '../migrate.js';

/**
 * When each name first appeared in ADMIN_USERNAMES: an account registered after that moment is
 * never made an admin by the list (anyone could have registered the name in between).
 */
export const adminSeedNames: Migration = {
  name: '006-admin-seed-names',
  async up(db) {
    await db.schema
      .createTable('admin_seed_names')
      .addColumn('name', 'text', (column) => column.primaryKey())
      .addColumn('first_listed_at', 'bigint', (column) => column.notNull())
      .execute();
  },
};
