import type { Request, RequestHandler } from 'express';
import type { Clock } from '../clock.js';
import { ForbiddenError } from '../errors.js';
import { readSignedIn } from '../mfa/scopes.js';
import type { User, UserStore } from '../users/store.js';
import { needsEnrolment } from './enrolment.js';

/** How stale the recorded last activity of a session may get before a page records it again. */
export const LAST_SEEN_GRANULARITY_MS = 60_000;

/**
 * Admin rights are a flag on the account, set by the operator. Never derive them from the name:
 * registration is open, so a name anyone may register (in any case or width) is no credential.
 */
export function isAdminUser(user: User): boolean {
  return user.isAdmin;
}

/**
 * Puts the signed-in user (if any) in res.locals for every page, and ends a session that has
 * been idle too long or has reached its absolute limit. The account is read again on every
 * request, so a grant or revoke by the operator counts from the next page on.
 */
export function createSignedInLoader(deps: { users: UserStore; clock: Clock }): RequestHandler {
  return async (req, res, next) => {
    const now = deps.clock.now().getTime();
    const slot = req.session?.signedIn;
    if (!slot) return next();
    const signedIn = readSignedIn(req.session, now);
    const user = signedIn ? await deps.users.findById(signedIn.userId) : null;
    // An account signs in only after proving its number; one that has not is never signed in.
    // A disabled account's sessions stop here at once, on every instance, even one whose end
    // (src/admin/account-help.ts) a save slipped past.
    if (!signedIn || !user || needsEnrolment(user) || user.disabledAt !== null) {
      delete req.session.signedIn;
      delete req.session.adminVerified;
      delete req.session.challengeId;
      return next();
    }
    // Activity is recorded at most once a minute: a changed session is a database write, and a
    // write on every page would cost more than the rest of the page (issue 10). The idle limit is
    // thirty minutes, so it ends within a minute of when it would have. A time ahead of this
    // clock (another instance's, running fast) is put right at once, or it would stretch the limit.
    const sinceRecorded = now - signedIn.lastSeenAt;
    if (sinceRecorded >= LAST_SEEN_GRANULARITY_MS || sinceRecorded < 0) signedIn.lastSeenAt = now;
    res.locals.currentUser = user;
    res.locals.isAdmin = isAdminUser(user);
    next();
  };
}

export function currentUserOf(res: { locals: Record<string, unknown> }): User | undefined {
  return res.locals.currentUser as User | undefined;
}

function loginUrlReturningTo(req: Request): string {
  return `/login?next=${encodeURIComponent(req.originalUrl)}`;
}

export const requireSignedIn: RequestHandler = (req, res, next) => {
  if (!currentUserOf(res)) return res.redirect(303, loginUrlReturningTo(req));
  next();
};

export const requireAdmin: RequestHandler = (_req, res, next) => {
  if (!res.locals.isAdmin) {
    return next(
      new ForbiddenError('The secure area is for administrators only.', {
        href: '/account',
        label: 'Back to your account',
      }),
    );
  }
  next();
};
