/**
 * NIST SP 800-63B's ceiling on consecutive failures: 100 wrong codes in a row for an account,
 * across every window, suspend its code entry until an admin unlocks it. The windowed pause in
 * the MFA service (10 in 15 minutes) slows guessing down; this stops a patient guesser for good.
 * A right code starts the count again. Kept in the database, so a restart does not reset it.
 * Backends: src/stores/sql/code-entry-ceiling.ts (SQLite, PostgreSQL).
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
