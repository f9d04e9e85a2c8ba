import { createHash, randomBytes } from 'node:crypto';

/**
 * One-time links (issue 11): an email's verification link, a password reset link, an account
 * deletion link. The token is 256 random bits in base64url (43 characters); only its SHA-256 is
 * stored, so a copy of the database opens no link. Each works once: using it is one conditional
 * write, so of two requests racing with one link exactly one gets through.
 */
export type TokenPurpose = 'email_verification' | 'password_reset' | 'account_deletion';

export interface OneTimeToken {
  purpose: TokenPurpose;
  userId: number;
  /** What the link was made for: the address to verify, a binding to the browser that asked. */
  detail: string | null;
  createdAt: Date;
  expiresAt: Date;
}

export interface IssueTokenRequest {
  purpose: TokenPurpose;
  userId: number;
  ttlMs: number;
  detail?: string | null;
}

export interface OneTimeTokenStore {
  /**
   * Stores a new token's digest, and voids every earlier link of the same purpose for the account
   * (a new request makes the old email useless). Returns the token itself: it exists only in the
   * link sent and is never stored.
   */
  issue(request: IssueTokenRequest): Promise<string>;
  /** The link's token as it stands (unused, unexpired), without using it: for a page that asks "continue?". */
  peek(purpose: TokenPurpose, token: string): Promise<OneTimeToken | null>;
  /** Uses the token: one conditional write; null when unknown, used, expired or of another purpose. */
  consume(purpose: TokenPurpose, token: string): Promise<OneTimeToken | null>;
  /** Voids the account's unused links of this purpose (or of every purpose). */
  voidAll(userId: number, purpose?: TokenPurpose): Promise<void>;
  /** Housekeeping: deletes at most `batchSize` tokens past their expiry, and says how many went. */
  deleteExpired(now: Date, batchSize: number): Promise<number>;
}

/** 32 bytes from the CSPRNG (256 bits; the issue asks for at least 128). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A token as a link carries it: refuses anything else before it reaches a store (a 404, not a query). */
export function isWellFormedToken(token: unknown): token is string {
  return typeof token === 'string' && /^[A-Za-z0-9_-]{43}$/.test(token);
}
