import type { AuditLog } from '../audit/log.js';
import type { AccountSessions } from '../auth/account-sessions.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { OneTimeTokenStore } from '../account/one-time-tokens.js';
import type { SecondFactorReset } from '../factors/second-factor-reset.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';
import type { Logger } from '../logger.js';
import type { Notices } from '../notices/notices.js';
import { maskPhone } from '../users/phone.js';
import type { User, UserStore } from '../users/store.js';

/**
 * An admin's replacement of an account's phone number, for a person who lost their phone and has
 * nothing else the settings step-up takes (recovery codes open a login, never settings). The new
 * number is not proven by the admin: it becomes the account's number *unproven*, so the owner's
 * next password leads to the `enrol` code sent to it (src/auth/enrolment.ts), and entering it
 * finishes the move. The admin never learns the password, so cannot log in as the person; the
 * router checks a fresh admin code, the reason and the confirmation first.
 *
 * Everything from before the move goes with the old phone: the account's authenticator apps,
 * passkeys and recovery codes (the person has none of them at hand, or they would not need this:
 * whoever has the lost phone may well hold them, with the password saved on it), its sessions,
 * remembered browsers and the reset links already sent. Never an admin's account: as with
 * disabling, the operator takes the role away first, or one secure-area session could move every
 * other admin's codes away.
 */
export interface PhoneReplacementRequest {
  /** The admin doing it. */
  actor: User;
  target: User;
  /** The new number, E.164 (parsed by the registration rules). */
  phone: string;
  /** Trimmed, 1 to REASON_MAX_CHARS characters (the form's schema checks it). */
  reason: string;
  /** The admin's address, for the audit log. */
  ip?: string;
  /** The admin's client key: the toll-fraud guard notes a refused number against it. */
  clientKey: string;
}

export type PhoneReplacementOutcome =
  | { ok: true; message: string }
  /** Refused: `field` says whether the number is what to change. */
  | { ok: false; status: 400 | 403 | 409; field?: 'phone'; message: string };

/**
 * Never one's own number: whoever holds an admin's session could otherwise move the account's
 * codes, the secure area's included, to a phone of their own.
 */
export const OWN_PHONE_REPLACEMENT_REFUSAL =
  'You cannot replace your own phone number here. Ask another admin to do it: they check with you first.';

/** What the admin does about a step of the replacement that a store failed. */
const REMEDIES: Record<string, string> = {
  'ending its sessions': 'Use "End all sessions" on the account’s page now.',
  'removing its second factors': 'Use "Reset second factors" on the account’s page now.',
  'forgetting its remembered browsers': 'Use "Reset second factors" on the account’s page now.',
  'voiding its reset links':
    'Links already sent lapse within 30 minutes of sending; until the new number is proven they open nothing.',
};

export interface PhoneReplacement {
  replace(request: PhoneReplacementRequest): Promise<PhoneReplacementOutcome>;
}

export function createPhoneReplacement(deps: {
  users: Pick<UserStore, 'replacePhoneToProve'>;
  /** The rules a sign-up's number and a person's own phone change pass (countries, VoIP, accounts per number). */
  registrations: Pick<RegistrationGuard, 'checkNumberForAccount'>;
  accountSessions: Pick<AccountSessions, 'endAllForUser'>;
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll'>;
  secondFactorReset: SecondFactorReset;
  tokens: Pick<OneTimeTokenStore, 'voidAll'>;
  notices: Notices;
  audit: AuditLog;
  logger: Logger;
}): PhoneReplacement {
  const { users, audit, logger } = deps;
  const counted = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;

  return {
    async replace({ actor, target, phone, reason, ip, clientKey }) {
      if (actor.id === target.id) return { ok: false, status: 403, message: OWN_PHONE_REPLACEMENT_REFUSAL };
      if (target.isAdmin) {
        return {
          ok: false,
          status: 403,
          message: `${target.username} is an admin, and an admin’s number cannot be replaced here. The operator takes the role away first (npm run admin -- revoke ${target.username}).`,
        };
      }
      if (phone === target.phone) {
        return {
          ok: false,
          status: 400,
          field: 'phone',
          message: `This is already ${target.username}’s number. Enter the new one.`,
        };
      }
      // Housekeeping removes unproven accounts that never logged in: such an account is a sign-up,
      // whose own code page corrects its number. (The store refuses it too, in the same write.)
      if (target.lastLoginAt === null) {
        return {
          ok: false,
          status: 409,
          message: `${target.username} has never logged in: its number cannot be replaced here.`,
        };
      }
      const admission = await deps.registrations.checkNumberForAccount({
        clientKey,
        phone,
        userId: target.id,
        username: target.username,
      });
      if (!admission.allowed) return { ok: false, status: 400, field: 'phone', message: admission.message };
      if (!(await users.replacePhoneToProve(target.id, target.phone, phone))) {
        return {
          ok: false,
          status: 409,
          message: `${target.username}’s number changed meanwhile. Check it on the account’s page and try again.`,
        };
      }

      const numbers = `${maskPhone(target.phone)} to ${maskPhone(phone)}`;
      // The number is replaced whatever happens next, so it is audited whatever happens next (as a
      // disable is). Each step on its own: one store failing leaves the others done, and the admin
      // is told which to do again.
      const done: string[] = [];
      const failed: string[] = [];
      const step = async (what: string, work: () => Promise<string>) => {
        try {
          done.push(await work());
        } catch (error) {
          logger.error({ err: error, userId: target.id }, `phone replaced, but ${what} failed`);
          failed.push(what);
        }
      };
      await step(
        'ending its sessions',
        async () =>
          counted(await deps.accountSessions.endAllForUser(target.id), 'session', 'sessions') + ' ended',
      );
      await step('removing its second factors', async () => {
        // Apps, passkeys, recovery codes and remembered browsers, in one transaction.
        const removed = await deps.secondFactorReset.removeAllSecondFactors(target.id);
        return `${counted(removed.factors, 'app or passkey', 'apps and passkeys')}, ${counted(removed.recoveryCodes, 'recovery code', 'recovery codes')} and ${counted(removed.rememberedBrowsers, 'remembered browser', 'remembered browsers')} removed`;
      });
      if (failed.includes('removing its second factors')) {
        // The remembered browsers at least, which would skip the code to the new number's logins.
        await step(
          'forgetting its remembered browsers',
          async () =>
            counted(
              await deps.rememberedBrowsers.revokeAll(
                target.id,
                `phone number replaced by ${actor.username}`,
              ),
              'remembered browser',
              'remembered browsers',
            ) + ' forgotten',
        );
      }
      await step('voiding its reset links', async () => {
        await deps.tokens.voidAll(target.id, 'password_reset');
        return 'reset links voided';
      });
      const ended = [
        ...done,
        ...(failed.length > 0 ? [`not done, a store failed: ${failed.join(', ')}`] : []),
      ].join(', ');
      await audit.record({
        type: 'account_phone_replaced',
        userId: target.id,
        username: target.username,
        ip,
        detail: `by ${actor.username} (${numbers}; ${ended}): ${reason}`,
      });
      await deps.notices.notify({ type: 'phone_replaced', user: target, ip, detail: maskPhone(phone) });
      return {
        ok: true,
        message:
          failed.length > 0
            ? `${target.username}’s number is now ${maskPhone(phone)}, to be proven, but ${failed.join(', ')} failed. ${[...new Set(failed.map((what) => REMEDIES[what]))].join(' ')}`
            : `${target.username}’s number is now ${maskPhone(phone)}, to be proven (${ended}). At its next login, after the password, a code goes to the new number.`,
      };
    },
  };
}
