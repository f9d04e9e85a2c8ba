import type { Clock } from '../../clock.js';
import { MAX_CONSECUTIVE_CODE_FAILURES, type CodeEntryCeiling } from '../../mfa/code-entry-ceiling.js';
import type { SqlDatabase } from './database.js';

export function createSqlCodeEntryCeiling(
  { db }: SqlDatabase,
  clock: Clock,
  maxConsecutiveFailures = MAX_CONSECUTIVE_CODE_FAILURES,
): CodeEntryCeiling {
  return {
    maxConsecutiveFailures,
    async isSuspended(userId) {
      const row = await db
        .selectFrom('code_entry_failures')
        .select('user_id')
        .where('user_id', '=', userId)
        .where('suspended_at', 'is not', null)
        .executeTakeFirst();
      return row !== undefined;
    },
    async recordFailure(userId) {
      // One statement adds the failure, so failures counted at the same time (on one instance or
      // several) never overwrite each other.
      const { consecutive } = await db
        .insertInto('code_entry_failures')
        .values({ user_id: userId, consecutive: 1 })
        .onConflict((conflict) =>
          conflict
            .column('user_id')
            .doUpdateSet((eb) => ({ consecutive: eb('code_entry_failures.consecutive', '+', eb.lit(1)) })),
        )
        .returning('consecutive')
        .executeTakeFirstOrThrow();
      // Only the one update that finds the row not yet suspended says "suspended now".
      const suspendedNow =
        consecutive >= maxConsecutiveFailures &&
        (
          await db
            .updateTable('code_entry_failures')
            .set({ suspended_at: clock.now().getTime() })
            .where('user_id', '=', userId)
            .where('suspended_at', 'is', null)
            .where('consecutive', '>=', maxConsecutiveFailures)
            .executeTakeFirst()
        ).numUpdatedRows === 1n;
      return { consecutive, suspendedNow };
    },
    async recordSuccess(userId) {
      await db
        .updateTable('code_entry_failures')
        .set({ consecutive: 0 })
        .where('user_id', '=', userId)
        .where('suspended_at', 'is', null)
        .execute();
    },
    async unlock(userId) {
      const result = await db
        .updateTable('code_entry_failures')
        .set({ consecutive: 0, suspended_at: null })
        .where('user_id', '=', userId)
        .where('suspended_at', 'is not', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
  };
}
