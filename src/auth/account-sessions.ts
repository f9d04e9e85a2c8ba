import { createHash } from 'node:crypto';
import type { SessionData } from 'express-session';
import { readSignedIn } from '../mfa/scopes.js';

/**
 * The signed-in sessions of one account, listed and ended across every browser and instance: the
 * admin's "end all sessions" and "disable", and the person's own list of sessions. Backends: the
 * session stores themselves (src/stores/sql/session-store.ts, src/stores/redis/session-store.ts),
 * which index each saved session by the account its signedIn slot names.
 */
export interface AccountSessions {
  /** The account's live signed-in sessions, the most recently seen first. */
  listForUser(userId: number): Promise<AccountSession[]>;
  /**
   * Ends one session of the account, found by its handle, as logout does: the id is retired for
   * good, so a request of that session still in flight cannot save it back. False when no live
   * session of *this* account has that handle (another account's handle ends nothing).
   */
  endOne(userId: number, handle: string): Promise<boolean>;
  /** Ends every session of the account (but `exceptSid`, the caller's own); says how many were live. */
  endAllForUser(userId: number, options?: { exceptSid?: string }): Promise<number>;
}

export interface AccountSession {
  /**
   * Names the session on a page or in a form. Not the session id: that is a bearer secret, and a
   * page (in a cache, a screenshot, a shared screen) must never hand anyone the means to be it.
   */
  handle: string;
  /** The browser's User-Agent when it signed in (truncated), or null for a session from before that was kept. */
  userAgent: string | null;
  /** The client's address when it signed in, or null (as above). */
  ip: string | null;
  signedInAt: Date;
  lastSeenAt: Date;
  /** When the store forgets it unless it is used again (its idle deadline). */
  expiresAt: Date;
}

/** The handle of a session id: SHA-256, so it names the session without being able to act as it. */
export function sessionHandleOf(sid: string): string {
  return createHash('sha256').update(sid).digest('base64url');
}

/** A User-Agent is kept only this long in a session (a header may be kilobytes). */
export const USER_AGENT_MAX_CHARS = 256;

/** What the signedIn slot keeps of the browser: the User-Agent header, truncated, or null. */
export function userAgentToKeep(header: string | undefined): string | null {
  if (typeof header !== 'string' || header.length === 0) return null;
  return header.slice(0, USER_AGENT_MAX_CHARS);
}

/**
 * The account a stored session is signed in as, for the stores' index: what `set` writes beside
 * the session. Only a whole, numeric userId counts.
 */
export function signedInUserIdOf(data: Partial<SessionData>): number | null {
  const userId = data.signedIn?.userId;
  return typeof userId === 'number' && Number.isSafeInteger(userId) ? userId : null;
}

/**
 * A stored session as the account's list shows it, or null when it is not (or no longer) signed in
 * as `userId`: another account, the idle or absolute limit passed (the signed-in loader would end
 * it at its next request), or past its expiry.
 */
export function toAccountSession(
  sid: string,
  data: Partial<SessionData>,
  userId: number,
  expiresAt: number,
  now: number,
): AccountSession | null {
  if (expiresAt <= now) return null;
  const signedIn = readSignedIn(data, now);
  if (!signedIn || signedIn.userId !== userId) return null;
  return {
    handle: sessionHandleOf(sid),
    userAgent: typeof signedIn.userAgent === 'string' ? signedIn.userAgent : null,
    ip: typeof signedIn.ip === 'string' ? signedIn.ip : null,
    signedInAt: new Date(signedIn.signedInAt),
    lastSeenAt: new Date(signedIn.lastSeenAt),
    expiresAt: new Date(expiresAt),
  };
}

/** Newest activity first; the handle breaks ties, so the order is stable. */
export function byLastSeen(a: AccountSession, b: AccountSession): number {
  return b.lastSeenAt.getTime() - a.lastSeenAt.getTime() || (a.handle < b.handle ? -1 : 1);
}
