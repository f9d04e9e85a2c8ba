/**
 * "Remember this browser" (issue 12): the browsers whose next logins to an account skip the code,
 * each known only by the SHA-256 of the token in its cookie. Every rule (how long, how many, which
 * scope they satisfy) lives in src/auth/remembered-browsers.ts; the store keeps rows and makes the
 * writes that must be atomic atomic. Backend: src/stores/sql/remembered-browser-store.ts.
 */
export interface RememberedBrowser {
  id: number;
  userId: number;
  /** What the person sees in settings: "Firefox on Windows". */
  label: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
}

export interface NewRememberedBrowser {
  userId: number;
  /** The token's SHA-256 (hex): the token itself is never stored. */
  tokenHash: string;
  label: string;
  expiresAt: Date;
}

export interface RememberedBrowserStore {
  /**
   * Stores a new remembered browser. The account then keeps at most `maxPerAccount`: the oldest
   * go, in the same transaction, so parallel adds cannot pass the cap together. Expired ones of the
   * account go too.
   */
  add(browser: NewRememberedBrowser, options: { maxPerAccount: number }): Promise<RememberedBrowser>;
  /**
   * Uses a token: one conditional write that replaces its digest by `newTokenHash`, only while the
   * row is this account's and unexpired. Of two requests racing with one token (on one instance or
   * two), exactly one gets the row; null for the other, and for a token used, revoked, expired or
   * of another account.
   */
  rotate(request: {
    userId: number;
    tokenHash: string;
    newTokenHash: string;
    usedAt: Date;
  }): Promise<RememberedBrowser | null>;
  /** Whether a digest belongs to an unexpired remembered browser of any account. */
  isLive(tokenHash: string): Promise<boolean>;
  /** The account's unexpired remembered browsers, the most recently used first. */
  listForUser(userId: number): Promise<RememberedBrowser[]>;
  /** Forgets one remembered browser of this account; false when it was not there (or is another's). */
  remove(userId: number, id: number): Promise<boolean>;
  /** Forgets every remembered browser of the account; how many there were. */
  removeAllForUser(userId: number): Promise<number>;
  /** Housekeeping: deletes at most `batchSize` rows past their expiry, and says how many went. */
  deleteExpired(now: Date, batchSize: number): Promise<number>;
}
