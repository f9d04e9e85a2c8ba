/**
 * Remembers when each ADMIN_USERNAMES name was first seen at a start. Names are keyed by
 * usernameKeyOf, as accounts are. Backends: src/stores/sql/seed-ledger.ts.
 */
export interface AdminSeedLedger {
  /** Records `name` as listed at `now` unless it was listed before; returns when it first was. */
  firstListedAt(name: string, now: Date): Promise<Date>;
}
