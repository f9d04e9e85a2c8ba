/**
 * An account's recovery codes, kept only as digests (src/factors/secrets.ts: recoveryCodeDigest).
 * The rules (how many, their shape, who may make them) live in src/factors/recovery-codes.ts; the
 * store makes the writes that must be atomic atomic.
 */
export interface RecoveryCodeSummary {
  /** Codes in the current set, used or not (0: the account has no set). */
  total: number;
  unused: number;
  /** When the current set was made; null without one. */
  createdAt: Date | null;
}

export interface RecoveryCodeStore {
  /**
   * Makes `digests` the account's whole set, in one transaction: the old set is void the moment
   * the new one exists, and never do two sets exist together, even when two are made at once.
   */
  replaceAll(userId: number, digests: string[]): Promise<void>;
  /**
   * Makes `digests` the account's set only if it has none at all (not even a used-up one), in one
   * transaction; false when it has one. Of two parallel first sets, exactly one is made.
   */
  addFirstSet(userId: number, digests: string[]): Promise<boolean>;
  /**
   * Spends the code with this digest: one conditional update that succeeds only while it is
   * unused, so of two parallel requests with the same code (on one instance or two) exactly one
   * gets true. False: not one of the account's codes, or already used.
   */
  spend(userId: number, digest: string, at: Date): Promise<boolean>;
  countUnused(userId: number): Promise<number>;
  /** When the current set was made, or null when the account has none. */
  createdAt(userId: number): Promise<Date | null>;
  /** The current set in one read: how many, how many unused, when made. */
  summary(userId: number): Promise<RecoveryCodeSummary>;
  /** Removes the account's whole set (an admin's reset of its second factors); how many rows. */
  removeAll(userId: number): Promise<number>;
}
