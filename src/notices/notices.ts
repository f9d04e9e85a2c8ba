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
  'factor_removed',
  'factor_added',
] as const;
export type NoticeType = (typeof NOTICE_TYPES)[number];

/** The factors a `factor_added` notice can name. */
export type AddedFactorKind = 'passkey' | 'totp';

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
  /** factor_added: which kind of factor was added (the notice names it). */
  kind?: AddedFactorKind;
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
  /** What happened, in one sentence. */
  what: string;
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
  factor_removed: {
    subject: 'A way to confirm it is you was removed',
    what: 'An authenticator app or a passkey was removed from your account, and the browsers that skipped the second step were forgotten.',
    ifNotYou: 'If this was not you, review your security settings and tell the site’s admins at once.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
  // Made specific by the factor's kind (wordsFor).
  factor_added: {
    subject: 'A way to confirm it is you was added',
    what: 'A way to confirm it is you was added to your account. It can now be used to log in.',
    ifNotYou:
      'If this was not you, someone is in your account: remove it in your security settings, change your password and tell the site’s admins.',
    link: { label: 'Review your security settings', path: '/account/security' },
  },
};

const ADDED_FACTOR_NAMES: Record<AddedFactorKind, string> = {
  passkey: 'A passkey',
  totp: 'An authenticator app',
};

/** The words of a notice; a factor added says which kind ("a way to confirm it is you" without one). */
function wordsFor(request: NoticeRequest): NoticeWords {
  const words = WORDS[request.type];
  if (request.type !== 'factor_added') return words;
  const what = request.kind ? ADDED_FACTOR_NAMES[request.kind] : 'A way to confirm it is you';
  return {
    ...words,
    subject: `${what} was added to your account`,
    what: `${what} was added to your account. It can now be used to log in.`,
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
    const words = wordsFor(request);
    const when = `${formatTime(clock.now())} UTC`;
    const base = { userId: request.user.id, username: request.user.username, ip: request.ip ?? null };
    try {
      await mailer.send(
        composer.composeEmail({
          to,
          subject: words.subject,
          paragraphs: [
            `Hello ${request.user.username},`,
            `${words.what} (${when}${request.ip ? `, from the address ${request.ip}` : ''})`,
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
