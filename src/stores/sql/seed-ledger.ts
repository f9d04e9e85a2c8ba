import type { AdminSeedLedger } from '../../admin/seed-ledger.js';
import type { SqlDatabase } from './database.js';

export function createSqlAdminSeedLedger({ db }: SqlDatabase): AdminSeedLedger {
  return {
    async firstListedAt(name, now) {
      // Two instances starting at once: the first insert wins and both read back its time.
      await db
        .insertInto('admin_seed_names')
        .values({ name, first_listed_at: now.getTime() })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .execute();
      const row = await db
        .selectFrom('admin_seed_names')
        .select('first_listed_at')
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      return new Date(row.first_listed_at);
    },
  };
}
