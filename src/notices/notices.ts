import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { EmailComposer } from '../email/compose.js';
import type { Mailer } from '../email/mailer.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { formatTime } from '../http/time-format.js';
import type { Logger } from '../logger.js';
import type { User } from '../users/store.js';

/**
 * Security notices (issue 11): an email to the account's verified address when something about
 * the account changed, so that a person whose account someone else is using hears of it.
 * - Only by email, never by SMS: each text costs money, and an attacker could pump them.
 * - At most one per type per account per 10 minutes: no mailbox flooded by a loop of changes.
 * - Never blocks the action: the mail server is not waited for, and a failed send is logged and
 *   written to the security log, nothing more.
 * - Never a code, a link that signs in, or a full phone number; the one link is to /forgot or
 *   the security page, which ask for proof themselves.
 */
export const NOTICE_TYPES = [
  'password_changed',
  'password_reset',
  'phone_changed',
  'email_changed',
  'deletion_requested',
  'code_entry_paused',
  'code_entry_suspended',
  // Wrong authenticator app codes after password reset links: the app is refused at resets for a day.
  'reset_app_codes_paused',
  // Recovery codes (issue 12): a new set made (the old one void), and one used (with how many are left).
  'recovery_codes_generated',
  'recovery_code_used',
  'factor_removed',
  'two_factor_turned_off',
  'two_factor_turned_on',
  'second_factors_reset',
  'factor_added',
  // An admin replaced the number of a person who lost their phone (the detail: the new one, masked).
  'phone_replaced',
] as const;
export type NoticeType = (typeof NOTICE_TYPES)[number];

/** One notice of a type per account in this window; the rest are dropped (the first said it). */
export const NOTICE_WINDOW_MS = 10 * 60_000;

export interface NoticeRequest {
  type: NoticeType;
  user: Pick<User, 'id' | 'username' | 'email'>;
  /** The address of the request that made the change (shown as the person sees it in the log). */
  ip?: string;
  /**
   * Where to send it instead of the account's verified address: the old address when the email
   * itself changed.
   */
  to?: string;
  /** recovery_code_used: how many unused codes the account has left after this one. */
  left?: number;
  /**
   * factor_added: what was added, as a sentence begins ("An authenticator app", "A passkey");
   * phone_replaced: the new number, masked.
   */
  detail?: string;
}

export interface Notices {
  /**
   * Sends the notice, unless the account has no verified address or had one of this type in the
   * last 10 minutes. Resolves without waiting for the mail server, and never throws.
   */
  notify(request: NoticeRequest): Promise<void>;
  /** Resolves when every notice handed to the mailer so far has been sent or has failed. */
  settled(): Promise<void>;
}

interface NoticeWords {
  subject: string;
  /** What happened, in one sentence (or made from the request, for a notice with a count). */
  what: string | ((request: NoticeRequest) => string);
  /** What to do if it was not them. */
  ifNotYou: string;
  link: { label: string; path: string };
}

const WORDS: Record<NoticeType, NoticeWords> = {
  password_changed: {
    subject: 'Your password was changed',
    what: 'The password of your account was changed, and every other session was ended.',
    ifNotYou: 'If this was not you, reset your password now and tell the site’s admins.',
    link: { label: 'Reset your password', path: '/forgot' },
  },
  password_reset: {
    subject: 'Your password was reset',
    what: 'The password of your account was reset with a link sent here and a code sent to your phone. Every session was ended.',
    ifNotYou: 'If this was not you, reset your password again now and tell the site’s admins.',
    link: { label: 'Reset your password', path: '/forgot' },
  },
  phone_changed: {
    subject: 'Your phone number was changed',
    what: 'The phone number of your account was changed. Codes now go to the new number.',
    ifNotYou: 'If this was not you, tell the site’s admins at once.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  email_changed: {
    subject: 'Your email address was changed',
    what: 'The email address of your account was changed or removed. Notices and password resets no longer come to this address.',
    ifNotYou: 'If this was not you, tell the site’s admins at once.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  deletion_requested: {
    subject: 'Your account is about to be deleted',
    what: 'Someone signed in to your account asked to delete it.',
    ifNotYou:
      'If this was not you, do not open the deletion link, change your password and tell the site’s admins.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  code_entry_paused: {
    subject: 'Code entry on your account was paused',
    what: 'Too many wrong codes were entered for your account, so code entry is paused for a while.',
    ifNotYou:
      'If this was not you, someone may know your password: change it once you are back in, or reset it.',
    link: { label: 'Reset your password', path: '/forgot' },
  },
  code_entry_suspended: {
    subject: 'Code entry on your account was suspended',
    what: 'So many wrong codes were entered for your account that code entry is suspended until the site’s admins unlock it.',
    ifNotYou:
      'Contact the site’s admins to unlock it; if it was not you, someone may know your password: reset it.',
    link: { label: 'Reset your password', path: '/forgot' },
  },
  reset_app_codes_paused: {
    subject: 'Your authenticator app was paused for password resets',
    what: 'Too many wrong authenticator app codes were entered after password reset links for your account, so a reset does not take app codes for a day. Your logins are not affected.',
    ifNotYou:
      'If this was not you, someone can read your email and is trying to reset your password: secure your mailbox, and tell the site’s admins.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  recovery_codes_generated: {
    subject: 'New recovery codes were made',
    what: 'New recovery codes were made for your account; the old ones no longer work.',
    ifNotYou:
      'If this was not you, someone is signed in to your account: change your password, end your other sessions and tell the site’s admins.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  recovery_code_used: {
    subject: 'A recovery code was used',
    what: ({ left }) =>
      `A recovery code was used to sign in to your account or reset its password.${left === undefined ? '' : ` ${describeCodesLeft(left)}`}`,
    ifNotYou:
      'If this was not you, someone has your password and one of your recovery codes: reset your password, make new recovery codes and tell the site’s admins.',
    link: { label: 'Reset your password', path: '/forgot' },
  },
  factor_removed: {
    subject: 'A way to confirm it is you was removed',
    what: 'An authenticator app or a passkey was removed from your account, and the browsers that skipped the second step were forgotten.',
    ifNotYou: 'If this was not you, review your security settings and tell the site’s admins at once.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  two_factor_turned_off: {
    subject: 'Two-step login was turned off',
    what: 'Two-step login was turned off for your account: your password alone now logs in, and every remembered browser was forgotten.',
    ifNotYou:
      'If this was not you, someone knows your password: reset it now, turn two-step login back on and tell the site’s admins.',
    link: { label: 'Reset your password', path: '/forgot' },
  },
  two_factor_turned_on: {
    subject: 'Two-step login was turned on',
    what: 'Two-step login was turned on for your account: each login now asks for a code after your password.',
    ifNotYou: 'If this was not you, review your security settings and tell the site’s admins.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  second_factors_reset: {
    subject: 'Your second factors were reset',
    what: 'An admin removed the authenticator apps, passkeys, recovery codes and remembered browsers of your account. Your phone still receives your codes.',
    ifNotYou:
      'If you did not ask for this, tell the site’s admins at once, then add your app and passkeys again and make new recovery codes.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  phone_replaced: {
    subject: 'An admin replaced your phone number',
    what: (request) =>
      `An admin replaced the phone number of your account with ${request.detail ? `the number ${request.detail}` : 'a new number'} and ended its sessions. At your next login, after your password, a code goes to that number: entering it finishes the change.`,
    ifNotYou: 'If you did not ask for this, tell the site’s admins at once.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  factor_added: {
    subject: 'A new way to confirm it is you was added to your account',
    what: 'A new way to confirm it is you was added to your account. It can now be used instead of a code to your phone.',
    ifNotYou:
      'If this was not you, someone is signed in to your account: reset your password and tell the site’s admins at once.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
};

/** "7 unused recovery codes are left." */
export function describeCodesLeft(left: number): string {
  if (left === 0) return 'No unused recovery codes are left.';
  return `${left} unused recovery ${left === 1 ? 'code is' : 'codes are'} left.`;
}

/** A notice's words, naming what it is about where the request says (factor_added's detail). */
function wordsOf(request: NoticeRequest): NoticeWords {
  const words = WORDS[request.type];
  if (request.type !== 'factor_added' || !request.detail) return words;
  return {
    ...words,
    subject: `${request.detail} was added to your account`,
    what: `${request.detail} was added to your account. It can now be used instead of a code to your phone.`,
  };
}

const noticeKey = (type: NoticeType, userId: number) => `notice:${type}:${userId}`;

export function createNotices(deps: {
  mailer: Mailer;
  composer: EmailComposer;
  limits: RateLimitStore;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
}): Notices {
  const { mailer, composer, limits, audit, clock, logger } = deps;
  const inFlight = new Set<Promise<void>>();

  async function deliver(request: NoticeRequest, to: string) {
    const words = wordsOf(request);
    const what = typeof words.what === 'string' ? words.what : words.what(request);
    const when = `${formatTime(clock.now())} UTC`;
    const base = { userId: request.user.id, username: request.user.username, ip: request.ip ?? null };
    try {
      await mailer.send(
        composer.composeEmail({
          to,
          subject: words.subject,
          paragraphs: [
            `Hello ${request.user.username},`,
            `${what} (${when}${request.ip ? `, from the address ${request.ip}` : ''})`,
            'If this was you, there is nothing to do.',
            words.ifNotYou,
          ],
          link: words.link,
        }),
      );
      await audit.record({ ...base, type: 'notice_sent', detail: request.type });
    } catch (error) {
      logger.error({ err: error, notice: request.type, userId: request.user.id }, 'a security notice failed');
      await audit.record({ ...base, type: 'notice_failed', detail: request.type }).catch(() => undefined);
    }
  }

  return {
    async notify(request) {
      const to = request.to ?? request.user.email;
      if (!to) return;
      try {
        const window = await limits.increment(noticeKey(request.type, request.user.id), NOTICE_WINDOW_MS);
        if (window.count > 1) return;
      } catch (error) {
        // A counter store that is down: the change went through, and this notice is lost, not the change.
        logger.error(
          { err: error, notice: request.type },
          'a security notice was not sent (limits unavailable)',
        );
        return;
      }
      const sending = deliver(request, to);
      inFlight.add(sending);
      void sending.finally(() => inFlight.delete(sending));
    },
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
