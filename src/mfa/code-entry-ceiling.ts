import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';

/**
 * NIST SP 800-63B's ceiling on consecutive failures: 100 wrong codes in a row for an account,
 * across every window, suspend its code entry until an admin unlocks it. The windowed pause in
 * the MFA service (10 in 15 minutes) slows guessing down; this stops a patient guesser for good.
 * A right code starts the count again. Kept in the database, so a restart does not reset it.
 */
export const MAX_CONSECUTIVE_CODE_FAILURES = 100;

export interface CodeEntryCeiling {
  readonly maxConsecutiveFailures: number;
  isSuspended(userId: number): Promise<boolean>;
  /** One more wrong code in a row; `suspendedNow` is true only for the one that reached the ceiling. */
  recordFailure(userId: number): Promise<{ consecutive: number; suspendedNow: boolean }>;
  /** A right code: the count starts again. */
  recordSuccess(userId: number): Promise<void>;
  /** An admin lifts the suspension; false when the account was not suspended. */
  unlock(userId: number): Promise<boolean>;
}

export function createSqliteCodeEntryCeiling(
  db: Db,
  clock: Clock,
  maxConsecutiveFailures = MAX_CONSECUTIVE_CODE_FAILURES,
): CodeEntryCeiling {
  const selectSuspended = db.prepare(
    'SELECT 1 FROM code_entry_failures WHERE user_id = ? AND suspended_at IS NOT NULL',
  );
  // One statement adds the failure, so failures counted at the same time never overwrite each other.
  const addFailure = db.prepare(
    `INSERT INTO code_entry_failures (user_id, consecutive) VALUES (?, 1)
     ON CONFLICT (user_id) DO UPDATE SET consecutive = consecutive + 1
     RETURNING consecutive`,
  );
  const suspend = db.prepare(
    'UPDATE code_entry_failures SET suspended_at = ? WHERE user_id = ? AND suspended_at IS NULL AND consecutive >= ?',
  );
  const reset = db.prepare(
    'UPDATE code_entry_failures SET consecutive = 0 WHERE user_id = ? AND suspended_at IS NULL',
  );
  const lift = db.prepare(
    'UPDATE code_entry_failures SET consecutive = 0, suspended_at = NULL WHERE user_id = ? AND suspended_at IS NOT NULL',
  );

  return {
    maxConsecutiveFailures,
    async isSuspended(userId) {
      return selectSuspended.get(userId) !== undefined;
    },
    async recordFailure(userId) {
      const { consecutive } = addFailure.get(userId) as { consecutive: number };
      const suspendedNow =
        consecutive >= maxConsecutiveFailures &&
        suspend.run(clock.now().getTime(), userId, maxConsecutiveFailures).changes === 1;
      return { consecutive, suspendedNow };
    },
    async recordSuccess(userId) {
      reset.run(userId);
    },
    async unlock(userId) {
      return lift.run(userId).changes === 1;
    },
  };
}
