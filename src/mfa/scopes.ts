import type { Session, SessionData } from 'express-session';
import { SESSION_ABSOLUTE_TIMEOUT_MS, SESSION_IDLE_TIMEOUT_MS } from '../http/session.js';
import type { Channel } from './provider.js';

/**
 * The session's slots, one per stage, each with its own timestamp. They hold ids and times,
 * never a password or a code.
 */
declare module 'express-session' {
  interface SessionData {
    /** Password accepted, login code not yet entered. */
    pendingLogin?: { userId: number; passwordVerifiedAt: number };
    /**
     * An account that has not proven its number yet (just registered, or its password given before
     * it ever entered a code): waiting for the code sent to that number (scope `enrol`).
     */
    pendingEnrolment?: { userId: number; startedAt: number };
    /**
     * Fully signed in. `userAgent` (truncated) and `ip` are as they were when it signed in, for the
     * account's list of sessions; sessions from before they were recorded have neither.
     */
    signedIn?: {
      userId: number;
      signedInAt: number;
      lastSeenAt: number;
      previousLoginAt: number | null;
      userAgent?: string | null;
      ip?: string | null;
      /**
       * The login proved a second factor (a code, an app, a passkey, a recovery code); false for a
       * remembered browser or a password alone (two-step login off). Recovery codes made without a
       * settings code right after a login need it (src/account/recovery-code-routes.ts).
       */
      provedSecondFactor?: boolean;
    };
    /**
     * An admin asked to enter the secure area: waiting for a factor of the admin step-up (a phone
     * code, or a passkey or app, which send nothing, so no challenge marks the stage).
     */
    pendingAdmin?: { userId: number; startedAt: number };
    /**
     * The factor this session chose for a stage other than the phone (the account's default, or
     * "Try another way"); absent: the phone. Bound to the stage's kind: a choice made at one stage
     * never carries to another.
     */
    factorMethod?: { kind: string; method: 'totp' | 'passkey' | 'recovery' };
    /** The WebAuthn challenge of the passkey form on the code page: used once, for this stage and account. */
    passkeyChallenge?: { challenge: string; kind: string; userId: number; issuedAt: number };
    /** The admin step-up. It never slides: it lasts ADMIN_SCOPE_TTL_MINUTES from the code. */
    adminVerified?: { userId: number; verifiedAt: number };
    /**
     * A signed-in person asked to confirm it is them before a change on /account/security: waiting
     * for the `settings` code sent to the account's own number.
     */
    pendingSettings?: { userId: number; startedAt: number; returnTo?: string };
    /** The settings step-up: it never slides, it lasts SETTINGS_SCOPE_TTL_MS from the code. */
    settingsVerified?: { userId: number; verifiedAt: number };
    /** A new number given on /account/security, waiting for the code sent to it (scope `enrol`). */
    pendingPhoneChange?: { userId: number; phone: string; startedAt: number };
    /** A password reset link was used: waiting for the `reset` code sent to the account's phone. */
    pendingReset?: { userId: number; startedAt: number };
    /** The reset link and the reset code both done: a new password may be chosen, for a short while. */
    resetVerified?: { userId: number; verifiedAt: number };
    /** The id of the code the session is waiting for, in whichever scope (the challenge store has it). */
    challengeId?: string;
    /** The delivery channel chosen for this session. */
    channel?: Channel;
    /** A same-site path to return to after login. */
    returnTo?: string;
  }
}

/** The half-logged-in state lasts this long: long enough to get a code, not to walk away. */
export const PENDING_LOGIN_TIMEOUT_MS = 10 * 60_000;
/** A settings code lets changes through for this long from the code, never sliding (issue 11). */
export const SETTINGS_SCOPE_TTL_MS = 5 * 60_000;
/** After the reset code, the new password must be chosen within this long. */
export const RESET_PASSWORD_WINDOW_MS = 10 * 60_000;

type AppSession = Session & Partial<SessionData>;

export function readPendingLogin(session: AppSession, now: number) {
  const pending = session.pendingLogin;
  if (!pending || now - pending.passwordVerifiedAt > PENDING_LOGIN_TIMEOUT_MS) return null;
  return pending;
}

/** The enrolment lasts as long as a half-finished login: a password again starts another. */
export function readPendingEnrolment(session: AppSession, now: number) {
  const pending = session.pendingEnrolment;
  if (!pending || now - pending.startedAt > PENDING_LOGIN_TIMEOUT_MS) return null;
  return pending;
}

/** The signed-in slot while it lasts (idle and absolute limits), from a request's session or a stored one. */
export function readSignedIn(session: Pick<Partial<SessionData>, 'signedIn'>, now: number) {
  const signedIn = session.signedIn;
  if (!signedIn) return null;
  if (now - signedIn.signedInAt > SESSION_ABSOLUTE_TIMEOUT_MS) return null;
  if (now - signedIn.lastSeenAt > SESSION_IDLE_TIMEOUT_MS) return null;
  return signedIn;
}

export function isAdminVerified(session: AppSession, userId: number, now: number, ttlMs: number): boolean {
  const admin = session.adminVerified;
  return admin !== undefined && admin.userId === userId && now - admin.verifiedAt < ttlMs;
}

export function adminVerifiedUntil(session: AppSession, ttlMs: number): number | null {
  return session.adminVerified ? session.adminVerified.verifiedAt + ttlMs : null;
}

/** A slot that started at `startedAt` and is still within `ttlMs`, for this account. */
function freshFor<T extends { userId: number }>(
  slot: T | undefined,
  at: (slot: T) => number,
  now: number,
  ttlMs: number,
) {
  if (!slot) return null;
  const age = now - at(slot);
  // A time ahead of ours (a clock stepped back) counts as stale, not as fresh for longer.
  return age >= 0 && age < ttlMs ? slot : null;
}

export function readPendingAdmin(session: AppSession, now: number) {
  return freshFor(session.pendingAdmin, (slot) => slot.startedAt, now, PENDING_LOGIN_TIMEOUT_MS);
}

export function readPendingSettings(session: AppSession, now: number) {
  return freshFor(session.pendingSettings, (slot) => slot.startedAt, now, PENDING_LOGIN_TIMEOUT_MS);
}

export function isSettingsVerified(session: AppSession, userId: number, now: number): boolean {
  const verified = freshFor(session.settingsVerified, (slot) => slot.verifiedAt, now, SETTINGS_SCOPE_TTL_MS);
  return verified !== null && verified.userId === userId;
}

export function settingsVerifiedUntil(session: AppSession, userId: number, now: number): number | null {
  return isSettingsVerified(session, userId, now)
    ? session.settingsVerified!.verifiedAt + SETTINGS_SCOPE_TTL_MS
    : null;
}

export function readPendingPhoneChange(session: AppSession, now: number) {
  return freshFor(session.pendingPhoneChange, (slot) => slot.startedAt, now, PENDING_LOGIN_TIMEOUT_MS);
}

export function readPendingReset(session: AppSession, now: number) {
  return freshFor(session.pendingReset, (slot) => slot.startedAt, now, PENDING_LOGIN_TIMEOUT_MS);
}

export function readResetVerified(session: AppSession, now: number) {
  return freshFor(session.resetVerified, (slot) => slot.verifiedAt, now, RESET_PASSWORD_WINDOW_MS);
}
