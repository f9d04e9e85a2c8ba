import type { AccountSessions } from '../auth/account-sessions.js';
import type { AuditLog } from '../audit/log.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Notices } from '../notices/notices.js';
import type { PasswordHasher } from '../users/passwords.js';
import type { OneTimeTokenStore } from './one-time-tokens.js';
import type { User, UserStore } from '../users/store.js';

/**
 * Changing the password on /account/security (issue 11): the current one is checked, the new one
 * stored, every other session of the account ended, every remembered browser forgotten (issue 12),
 * and a notice sent. The caller gives its own
 * session a new id afterwards (it proved the new password is the person's).
 */

/**
 * Wrong current passwords an account may enter here in an hour. Whoever reaches this form holds a
 * signed-in session and a fresh code, but may not know the password (a session left open): they
 * must not be able to guess it here faster than at the login, and addresses do not matter, so the
 * count is per account.
 */
export const PASSWORD_CHANGE_FAILURES_PER_HOUR = 5;
const HOUR_MS = 60 * 60_000;

export type PasswordChangeOutcome =
  | { ok: true; endedSessions: number }
  | { ok: false; reason: 'wrong_current' | 'same_password' }
  | { ok: false; reason: 'too_many'; retryAfterSeconds: number };

export interface PasswordChange {
  change(request: {
    user: User;
    currentPassword: string;
    newPassword: string;
    /** The session making the change: it stays (the caller regenerates its id), every other one ends. */
    keepSid: string;
    ip?: string;
  }): Promise<PasswordChangeOutcome>;
}

const failuresKey = (userId: number) => `password-change:failures:${userId}`;

export function createPasswordChange(deps: {
  users: UserStore;
  hasher: PasswordHasher;
  limits: RateLimitStore;
  sessions: AccountSessions;
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll'>;
  /** Reset links already sent are voided: a password just chosen is not to be replaced by an old link. */
  tokens: Pick<OneTimeTokenStore, 'voidAll'>;
  audit: AuditLog;
  notices: Notices;
  clock: Clock;
}): PasswordChange {
  const { users, hasher, limits, audit, clock } = deps;
  return {
    async change({ user, currentPassword, newPassword, keepSid, ip }) {
      // Counted as a failure before the (slow) check, so parallel guesses cannot all pass while
      // the first is still hashing; handed back once the password turns out right.
      const key = failuresKey(user.id);
      const taken = await limits.increment(key, HOUR_MS);
      // Race: a check that waited its turn to hash may end after the hour it was counted in. The
      // hand-back goes to that hour or nowhere: taken from the next, it would be a free guess there.
      const handBack = () => limits.decrement(key, taken.window);
      if (taken.count > PASSWORD_CHANGE_FAILURES_PER_HOUR) {
        await handBack();
        const retryAfterSeconds = Math.max(
          1,
          Math.ceil((taken.resetAt.getTime() - clock.now().getTime()) / 1000),
        );
        return { ok: false, reason: 'too_many', retryAfterSeconds };
      }
      let matches: boolean;
      try {
        matches = await hasher.verify(user.passwordHash, currentPassword);
      } catch (error) {
        // Not checked (too many hashes queued: the 503 page), so not a guess.
        await handBack();
        throw error;
      }
      const base = { userId: user.id, username: user.username, ip: ip ?? null };
      if (!matches) {
        await audit.record({ ...base, type: 'password_change_failed' });
        return { ok: false, reason: 'wrong_current' };
      }
      await limits.reset(key);
      if (newPassword === currentPassword) return { ok: false, reason: 'same_password' };

      await users.setPasswordHash(user.id, await hasher.hash(newPassword));
      // Whoever else holds a session (the person who learnt the old password) is out at once, on
      // every instance: the store retires their ids, so a request of theirs in flight cannot save one back.
      const endedSessions = await deps.sessions.endAllForUser(user.id, { exceptSid: keepSid });
      // And whoever's browser was remembered must prove a second factor again, with the new password.
      await deps.rememberedBrowsers.revokeAll(user.id, 'password changed');
      await deps.tokens.voidAll(user.id, 'password_reset');
      await audit.record({
        ...base,
        type: 'password_changed',
        detail: `${endedSessions} other ${endedSessions === 1 ? 'session' : 'sessions'} ended`,
      });
      await deps.notices.notify({ type: 'password_changed', user, ip });
      return { ok: true, endedSessions };
    },
  };
}
