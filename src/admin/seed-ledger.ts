/** When each ADMIN_USERNAMES name was first seen at a start, and the newest account id then. */
export interface FirstListing {
  at: Date;
  lastUserIdThen: number;
}

/**
 * Remembers each ADMIN_USERNAMES name the first time it was seen at a start. Names are keyed by
 * usernameKeyOf, as accounts are. Backends: src/stores/sql/seed-ledger.ts.
 */
export interface AdminSeedLedger {
  /** Records `name` as listed now unless it was listed before; returns its first listing. */
  firstListing(name: string, now: Date): Promise<FirstListing>;
}
