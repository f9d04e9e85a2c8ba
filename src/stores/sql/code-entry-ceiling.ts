import type { Clock } from '../../clock.js';
import { MAX_CONSECUTIVE_CODE_FAILURES, type CodeEntryCeiling } from '../../mfa/code-entry-ceiling.js';
import type { SqlDatabase } from './database.js';
import { prepareQuery } from './prepared-query.js';

export function createSqlCodeEntryCeiling(
  { db, durably }: SqlDatabase,
  clock: Clock,
  maxConsecutiveFailures = MAX_CONSECUTIVE_CODE_FAILURES,
): CodeEntryCeiling {
  // Asked on every code page and every code entered: built once (prepared-query.ts).
  const suspendedRow = prepareQuery(db, ({ userId }: { userId: number }) =>
    db
      .selectFrom('code_entry_failures')
      .select('user_id')
      .where('user_id', '=', userId)
      .where('suspended_at', 'is not', null),
  );
  // One statement adds the failure, so failures counted at the same time (on one instance or
  // several) never overwrite each other.
  const addFailure = prepareQuery(db, ({ userId }: { userId: number }) =>
    db
      .insertInto('code_entry_failures')
      .values({ user_id: userId, consecutive: 1 })
      .onConflict((conflict) =>
        conflict
          .column('user_id')
          .doUpdateSet((eb) => ({ consecutive: eb('code_entry_failures.consecutive', '+', eb.lit(1)) })),
      )
      .returning('consecutive'),
  );
  return {
    maxConsecutiveFailures,
    async isSuspended(userId) {
      return (await suspendedRow.first({ userId })) !== undefined;
    },
    async recordFailure(userId) {
      const added = await addFailure.first({ userId });
      if (added === undefined) throw new Error('code_entry_failures: the upsert returned no row');
      const { consecutive } = added;
      // Only the one update that finds the row not yet suspended says "suspended now". It waits
      // for the disk where the counting does not (RELAXED_DURABILITY_TABLES): a power cut must not
      // lift a suspension.
      const suspendedNow =
        consecutive >= maxConsecutiveFailures &&
        (
          await durably(() =>
            db
              .updateTable('code_entry_failures')
              .set({ suspended_at: clock.now().getTime() })
              .where('user_id', '=', userId)
              .where('suspended_at', 'is', null)
              .where('consecutive', '>=', maxConsecutiveFailures)
              .executeTakeFirst(),
          )
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
      // An admin's decision: it waits for the disk, as the suspension does.
      const result = await durably(() =>
        db
          .updateTable('code_entry_failures')
          .set({ consecutive: 0, suspended_at: null })
          .where('user_id', '=', userId)
          .where('suspended_at', 'is not', null)
          .executeTakeFirst(),
      );
      return result.numUpdatedRows === 1n;
    },
  };
}
