import type { AdminSeedLedger } from '../../admin/seed-ledger.js';
import type { SqlDatabase } from './database.js';

export function createSqlAdminSeedLedger({ db }: SqlDatabase): AdminSeedLedger {
  return {
    async firstListing(name, now) {
      // The newest account id is read in the insert itself, so no account registered in between
      // can slip under it. Two instances starting at once: the first insert wins and both read it back.
      await db
        .insertInto('admin_seed_names')
        .values((eb) => ({
          name,
          first_listed_at: now.getTime(),
          last_user_id_then: eb
            .selectFrom('users')
            .select((users) => users.fn.coalesce(users.fn.max('id'), users.lit(0)).as('id')),
        }))
        .onConflict((conflict) => conflict.column('name').doNothing())
        .execute();
      const row = await db
        .selectFrom('admin_seed_names')
        .select(['first_listed_at', 'last_user_id_then'])
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      return { at: new Date(row.first_listed_at), lastUserIdThen: row.last_user_id_then };
    },
  };
}
