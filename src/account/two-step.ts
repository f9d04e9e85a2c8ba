import type { AuditLog } from '../audit/log.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { MfaPolicy } from '../factors/config.js';
import type { Notices } from '../notices/notices.js';
import type { User, UserStore } from '../users/store.js';

/**
 * Two-step login optional (MFA_POLICY=optional; issue 12, the Twilio Verify sample): a person who
 * is not an admin may turn the second step of the login off, after a fresh settings code, and on
 * again. The rules of who may, and when the password alone is a full login, live here and nowhere
 * else:
 * - admins always need the second step, even if their flag was set before they became admins;
 * - with MFA_POLICY=required the flag is ignored: a site switched back to required asks everyone.
 */

/** Whether this account may turn its second step off or on (the switch is shown, its route answers). */
export function isTwoStepChoiceOffered(user: Pick<User, 'isAdmin'>, policy: MfaPolicy): boolean {
  return policy === 'optional' && !user.isAdmin;
}

/** Whether a login of this account with the right password is a full login, with no second step. */
export function isTwoStepLoginOff(
  user: Pick<User, 'isAdmin' | 'twoFactorOffAt'>,
  policy: MfaPolicy,
): boolean {
  return isTwoStepChoiceOffered(user, policy) && user.twoFactorOffAt !== null;
}

export interface TwoStepLogin {
  readonly policy: MfaPolicy;
  /**
   * Turns the second step off (`off: true`) or on again, tells the person by email and audits it;
   * turning it off also forgets every remembered browser (there is nothing left to skip). The
   * caller checks isTwoStepChoiceOffered and the fresh settings code first. False when it was so
   * already (nothing done).
   */
  set(request: { user: User; off: boolean; ip?: string }): Promise<boolean>;
}

export function createTwoStepLogin(deps: {
  policy: MfaPolicy;
  users: Pick<UserStore, 'setTwoFactorOff'>;
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll'>;
  audit: AuditLog;
  notices: Notices;
}): TwoStepLogin {
  return {
    policy: deps.policy,
    async set({ user, off, ip }) {
      if ((user.twoFactorOffAt !== null) === off) return false;
      await deps.users.setTwoFactorOff(user.id, off);
      await deps.audit.record({
        type: off ? 'two_factor_turned_off' : 'two_factor_turned_on',
        userId: user.id,
        username: user.username,
        ip: ip ?? null,
      });
      if (off) await deps.rememberedBrowsers.revokeAll(user.id, 'two-step login turned off');
      await deps.notices.notify({ type: off ? 'two_factor_turned_off' : 'two_factor_turned_on', user, ip });
      return true;
    },
  };
}
