import type { SecondFactorReset } from '../../factors/second-factor-reset.js';
import type { SqlDatabase } from './database.js';

/**
 * The reset across the tables of several features (factors, recovery codes, remembered browsers,
 * the account's default factor): one transaction, so a failure midway leaves everything as it was
 * and a retry does the whole reset.
 */
export function createSqlSecondFactorReset(database: SqlDatabase): SecondFactorReset {
  const { db } = database;
  return {
    removeAllSecondFactors(userId) {
      return db.transaction().execute(async (trx) => {
        const factors = await trx.deleteFrom('factors').where('user_id', '=', userId).executeTakeFirst();
        const recoveryCodes = await trx
          .deleteFrom('recovery_codes')
          .where('user_id', '=', userId)
          .executeTakeFirst();
        const rememberedBrowsers = await trx
          .deleteFrom('remembered_browsers')
          .where('user_id', '=', userId)
          .executeTakeFirst();
        await trx.updateTable('users').set({ default_factor: null }).where('id', '=', userId).execute();
        return {
          factors: Number(factors.numDeletedRows),
          recoveryCodes: Number(recoveryCodes.numDeletedRows),
          rememberedBrowsers: Number(rememberedBrowsers.numDeletedRows),
        };
      });
    },
  };
}
