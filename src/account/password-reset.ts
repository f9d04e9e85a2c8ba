import type { AuditLog } from '../audit/log.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import { needsEnrolment } from '../auth/enrolment.js';
import type { Clock } from '../clock.js';
import type { EmailComposer } from '../email/compose.js';
import type { Mailer } from '../email/mailer.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { formatTime } from '../http/time-format.js';
import type { Logger } from '../logger.js';
import type { Notices } from '../notices/notices.js';
import type { PasswordHasher } from '../users/passwords.js';
import { normaliseUsername } from '../users/username.js';
import type { User, UserStore } from '../users/store.js';
import type { OneTimeTokenStore } from './one-time-tokens.js';

/**
 * A forgotten password (issue 11): a one-time link to the account's verified email address, and
 * then a code to the account's phone (the `reset` scope, src/mfa/routes.ts): the email alone never
 * resets the password, so a read mailbox is not a taken account. Threats, and what answers them:
 * - finding out which accounts or addresses exist: one answer, one status and one minimum time
 *   whatever was typed (the page pads itself to RESET_RESPONSE_FLOOR_MS), and the mail server is
 *   never waited for in the request;
 * - flooding someone's mailbox: one link per account per minute, a few a day per account from one
 *   client address and a higher ceiling per account a day, the extra requests silently dropped;
 *   and RESET_REQUESTS_PER_ADDRESS_PER_HOUR requests per client address, counted in the shared
 *   limits store so several instances give one allowance;
 * - a stranger using up the owner's links: the day's allowance is per account *and* client
 *   address, so the owner asking from her own network still gets a link. What a stranger can
 *   still do: ask just before her, so her request within that minute sends nothing, and void her
 *   link with a newer one (either way the newer link is in her mailbox, and she uses that); and,
 *   from enough networks (RESET_LINKS_PER_ACCOUNT_PER_DAY over
 *   RESET_LINKS_PER_ACCOUNT_PER_ADDRESS_PER_DAY, easy with IPv6 /64s), use up the ceiling, after
 *   which the owner gets nothing that day either: the price of a bounded mailbox;
 * - an old link found later: each works once, for 30 minutes, and a new request voids the one before.
 */
export const RESET_LINK_TTL_MS = 30 * 60_000;
/** One link per account in this window: a second request within it sends nothing. */
export const RESET_LINK_INTERVAL_MS = 60_000;
/**
 * Links one account may be sent in a day on the requests of one client address (clientKeyOf: an
 * IPv6 /64 as one): enough for an owner whose mail is slow to ask again, and what keeps one
 * stranger's address from using up the account's day.
 */
export const RESET_LINKS_PER_ACCOUNT_PER_ADDRESS_PER_DAY = 3;
/**
 * Links one account may be sent in a day, whoever asks: the backstop against a mailbox flooded
 * from many addresses, so a stranger needs 4 networks to reach it. No higher: each link is also a
 * reset with 10 guesses at the phone code for whoever reads the mailbox.
 */
export const RESET_LINKS_PER_ACCOUNT_PER_DAY = 10;
const DAY_MS = 24 * 60 * 60_000;
export const RESET_REQUESTS_PER_ADDRESS_PER_HOUR = 5;
const HOUR_MS = 60 * 60_000;
/** Every answer of /forgot takes at least this long, whether an account matched or not. */
export const RESET_RESPONSE_FLOOR_MS = 400;

export const RESET_PATH = '/reset';

export type ResetRequestOutcome = { ok: true } | { ok: false; reason: 'too_many'; retryAfterSeconds: number };

export interface PasswordReset {
  /**
   * Someone typed a username or an email address on /forgot. Counts the request against the
   * client's allowance; then, if it names a proven, enabled account with a verified address and
   * no link went to it in the last minute, issues a link and sends it in the background. The
   * outcome says nothing of which it was.
   */
  request(request: { identifier: string; ip?: string; clientKey: string }): Promise<ResetRequestOutcome>;
  /** Whether the link would still work (for the page that asks to continue), without using it. */
  isLinkLive(token: string): Promise<boolean>;
  /**
   * Uses the link: one conditional write, so of two requests racing with it exactly one gets the
   * account. Null when unknown, used, expired, voided, or the account can no longer reset.
   */
  useLink(token: string): Promise<User | null>;
  /**
   * The link and the reset code were both done: stores the new password, voids the account's other
   * reset links and ends every session of the account, then tells the person by email.
   */
  /** `verifiedAt`: when the reset's code was entered (the session's resetVerified slot). */
  setNewPassword(request: {
    userId: number;
    password: string;
    ip?: string;
    verifiedAt: number;
  }): Promise<SetPasswordOutcome>;
  /** Resolves when every link handed to the mailer so far has been sent or has failed (for tests, shutdown). */
  settled(): Promise<void>;
}

export type SetPasswordOutcome = { ok: true; sessionsEnded: number } | { ok: false; reason: 'no_account' };

/** What a reset needs of the session stores: every session of the account, ended on every instance. */
export interface SessionsOfAccount {
  endAllForUser(userId: number): Promise<number>;
}

/** The account a link may be sent for: one that proved its number, is enabled and has a verified address. */
export function canResetByEmail(user: User): user is User & { email: string } {
  return user.email !== null && !needsEnrolment(user) && user.disabledAt === null;
}

export function createPasswordReset(deps: {
  users: UserStore;
  tokens: OneTimeTokenStore;
  mailer: Mailer;
  composer: EmailComposer;
  limits: RateLimitStore;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  siteName: string;
  hasher: PasswordHasher;
  sessions: SessionsOfAccount;
  /** Every remembered browser is forgotten too (issue 12): the next logins ask for a code. */
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll'>;
  notices: Notices;
}): PasswordReset {
  const { users, tokens, limits, audit, clock, logger } = deps;
  const inFlight = new Set<Promise<void>>();

  /** A username has no "@" (the registration form refuses one), so an "@" means an email address. */
  async function findAccount(identifier: string): Promise<User | null> {
    const typed = identifier.trim();
    if (typed.includes('@')) return users.findByVerifiedEmail(typed);
    return users.findByUsername(normaliseUsername(typed));
  }

  /**
   * One from each of the account's allowances, in this order, or none: a request that sends
   * nothing gives back what it took, so a stranger's dropped requests neither hold the owner's
   * next minute nor count toward the account's day. Each is one increment, so of two requests
   * racing for one account only the first in the minute sends.
   */
  async function takeLinkAllowance(userId: number, clientKey: string): Promise<boolean> {
    const allowances = [
      {
        key: `reset:account-address:day:${userId}:${clientKey}`,
        windowMs: DAY_MS,
        limit: RESET_LINKS_PER_ACCOUNT_PER_ADDRESS_PER_DAY,
      },
      { key: `reset:account:${userId}`, windowMs: RESET_LINK_INTERVAL_MS, limit: 1 },
      { key: `reset:account:day:${userId}`, windowMs: DAY_MS, limit: RESET_LINKS_PER_ACCOUNT_PER_DAY },
    ];
    const taken: Array<{ key: string; window: string }> = [];
    for (const { key, windowMs, limit } of allowances) {
      const window = await limits.increment(key, windowMs);
      taken.push({ key, window: window.window });
      if (window.count > limit) {
        await Promise.all(taken.map((done) => limits.decrement(done.key, done.window)));
        return false;
      }
    }
    return true;
  }

  async function deliver(user: User & { email: string }, token: string, ip: string | undefined) {
    try {
      await deps.mailer.send(
        deps.composer.composeEmail({
          to: user.email,
          subject: `Reset your password for ${deps.siteName}`,
          paragraphs: [
            `Hello ${user.username},`,
            `Someone asked to reset the password of your ${deps.siteName} account (${formatTime(clock.now())} UTC${ip ? `, from the address ${ip}` : ''}).`,
            'Open the link below within 30 minutes to choose a new password. It works once. You will also need a code we send to your phone.',
            'If this was not you, ignore this email: without the link and the code, nothing changes.',
          ],
          link: { label: 'Reset your password', path: `${RESET_PATH}/${token}` },
        }),
      );
    } catch (error) {
      // The page already said "if it matches, a link is on its way": the person asks again later.
      logger.error({ err: error, userId: user.id }, 'a password reset link could not be sent');
    }
  }

  return {
    async request({ identifier, ip, clientKey }) {
      // Counted before the lookup, for every request, so the count says nothing about accounts.
      const byAddress = await limits.increment(`reset:address:${clientKey}`, HOUR_MS);
      if (byAddress.count > RESET_REQUESTS_PER_ADDRESS_PER_HOUR) {
        const retryAfterSeconds = Math.max(
          1,
          Math.ceil((byAddress.resetAt.getTime() - clock.now().getTime()) / 1000),
        );
        return { ok: false, reason: 'too_many', retryAfterSeconds };
      }
      const user = await findAccount(identifier);
      if (!user || !canResetByEmail(user)) return { ok: true };
      if (!(await takeLinkAllowance(user.id, clientKey))) return { ok: true };
      // A new link voids the one before (tokens.issue voids every earlier reset link of the account).
      const token = await tokens.issue({
        purpose: 'password_reset',
        userId: user.id,
        ttlMs: RESET_LINK_TTL_MS,
      });
      await audit.record({
        type: 'password_reset_requested',
        userId: user.id,
        username: user.username,
        ip: ip ?? null,
      });
      // Not awaited: a mail server's pace (or its silence) must not make this answer slower for a
      // real account than for an unknown one.
      const sending = deliver(user, token, ip);
      inFlight.add(sending);
      void sending.finally(() => inFlight.delete(sending));
      return { ok: true };
    },
    async isLinkLive(token) {
      const live = await tokens.peek('password_reset', token);
      if (!live) return false;
      const user = await users.findById(live.userId);
      return user !== null && canResetByEmail(user);
    },

    async useLink(token) {
      const used = await tokens.consume('password_reset', token);
      if (!used) return null;
      const user = await users.findById(used.userId);
      // Disabled by an admin (or its address removed) since the link was sent: the link is spent and leads nowhere.
      return user && canResetByEmail(user) ? user : null;
    },

    async setNewPassword({ userId, password, ip, verifiedAt }) {
      const user = await users.findById(userId);
      // Nor one whose number was proven after this reset's code was entered: an admin moved it and
      // its owner proved the new one meanwhile; the reset, made with the old phone, is over.
      if (user?.phoneVerifiedAt && user.phoneVerifiedAt.getTime() > verifiedAt) {
        return { ok: false, reason: 'no_account' };
      }
      // An account whose number is not proven (an admin moved it to a new one while this reset was
      // open) takes no new password either: that would leave its owner, who proves the new number
      // with the password she knows, locked out by whoever held the old phone and the mailbox.
      if (!user || user.disabledAt !== null || needsEnrolment(user))
        return { ok: false, reason: 'no_account' };
      // Through the hashing queue: past its limit this throws HashingBusyError (the 503 page), and
      // the session keeps its verified reset for a retry.
      const passwordHash = await deps.hasher.hash(password);
      await users.setPasswordHash(user.id, passwordHash);
      await tokens.voidAll(user.id, 'password_reset');
      // Whoever was signed in (someone who knew the old password, say) is out, on every instance.
      const sessionsEnded = await deps.sessions.endAllForUser(user.id);
      await deps.rememberedBrowsers.revokeAll(user.id, 'password reset');
      await audit.record({
        type: 'password_reset',
        userId: user.id,
        username: user.username,
        ip: ip ?? null,
        detail: `${sessionsEnded} session${sessionsEnded === 1 ? '' : 's'} ended`,
      });
      await deps.notices.notify({ type: 'password_reset', user, ip });
      return { ok: true, sessionsEnded };
    },

    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
