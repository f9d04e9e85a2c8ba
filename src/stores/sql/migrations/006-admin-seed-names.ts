import type { Migration } from '../migrate.js';

/**
 * Each name the first time it appeared in ADMIN_USERNAMES, with the newest account id then: an
 * account made after that (a higher id) is never made an admin by the list, since anyone could
 * have registered the name in between. Ids, unlike clocks, never step back.
 */
export const adminSeedNames: Migration = {
  name: '006-admin-seed-names',
  async up(db) {
    await db.schema
      .createTable('admin_seed_names')
      .addColumn('name', 'text', (column) => column.primaryKey())
      .addColumn('first_listed_at', 'bigint', (column) => column.notNull())
      .addColumn('last_user_id_then', 'bigint', (column) => column.notNull())
      .execute();
  },
};
