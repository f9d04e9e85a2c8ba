import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import { emailKeyOf } from '../email/address.js';
import type { EmailComposer } from '../email/compose.js';
import type { Mailer } from '../email/mailer.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { Notices } from '../notices/notices.js';
import type { User, UserStore } from '../users/store.js';
import type { OneTimeTokenStore } from './one-time-tokens.js';

/**
 * Proving an email address (issue 11): a link with a one-time token, valid 24 hours, to the
 * address given. Until it is opened the address is only "waiting": it receives nothing but that
 * link, and no reset or notice goes to it. Opening the link makes it the account's address (one
 * mailbox, one account), and the address it replaces hears about it.
 */
export const EMAIL_LINK_TTL_MS = 24 * 60 * 60_000;
const HOUR_MS = 60 * 60_000;
/** Links an account may ask for in an hour: enough for typos, too few to mail someone over and over. */
export const VERIFICATION_EMAILS_PER_ACCOUNT_PER_HOUR = 5;
/** Links one address may receive in a day, from every account together: a stranger's address typed in is not flooded. */
export const VERIFICATION_EMAILS_PER_ADDRESS_PER_DAY = 3;

export const EMAIL_VERIFICATION_PATH = '/email/verify';
/** The audit detail of an email_verified event whose address replaced a verified one. */
export const EMAIL_REPLACED = 'replaced the verified address';

export type StartOutcome = { ok: true } | { ok: false; reason: 'too_many'; retryAfterSeconds: number };

export type ConfirmOutcome =
  { ok: true; user: User; address: string } | { ok: false; reason: 'invalid' | 'stale' | 'taken' };

export interface EmailVerification {
  /** Records `address` as the account's waiting address and sends its link. */
  start(request: { user: User; address: string; ip?: string }): Promise<StartOutcome>;
  /** The person confirmed on the link's page: uses the token and makes the address the account's. */
  confirm(token: string, ip?: string): Promise<ConfirmOutcome>;
  /** Removes the account's address, and with it the reset links sent to it. */
  remove(request: { user: User; ip?: string }): Promise<void>;
  /** Whether the link would still work (for the page that asks to confirm), without using it. */
  isLive(token: string): Promise<boolean>;
  /** Resolves when every link handed to the mailer so far has been sent or has failed. */
  settled(): Promise<void>;
}

export function createEmailVerification(deps: {
  users: UserStore;
  tokens: OneTimeTokenStore;
  mailer: Mailer;
  composer: EmailComposer;
  limits: RateLimitStore;
  notices: Notices;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  siteName: string;
}): EmailVerification {
  const { users, tokens, limits, audit, clock } = deps;
  const inFlight = new Set<Promise<unknown>>();

  /** Takes one from each allowance, or gives back what it took and says how long to wait. */
  async function takeAllowance(user: User, address: string): Promise<number | null> {
    const keys = [
      {
        key: `email-verification:account:${user.id}`,
        windowMs: HOUR_MS,
        limit: VERIFICATION_EMAILS_PER_ACCOUNT_PER_HOUR,
      },
      {
        key: `email-verification:address:${emailKeyOf(address)}`,
        windowMs: 24 * HOUR_MS,
        limit: VERIFICATION_EMAILS_PER_ADDRESS_PER_DAY,
      },
    ];
    const taken: Array<{ key: string; window: string }> = [];
    for (const { key, windowMs, limit } of keys) {
      const window = await limits.increment(key, windowMs);
      taken.push({ key, window: window.window });
      if (window.count > limit) {
        await Promise.all(taken.map((done) => limits.decrement(done.key, done.window)));
        return Math.max(1, Math.ceil((window.resetAt.getTime() - clock.now().getTime()) / 1000));
      }
    }
    return null;
  }

  return {
    async start({ user, address, ip }) {
      const retryAfterSeconds = await takeAllowance(user, address);
      if (retryAfterSeconds !== null) return { ok: false, reason: 'too_many', retryAfterSeconds };
      await users.setPendingEmail(user.id, address);
      // A new link voids the one before (to this address or an earlier one).
      const token = await tokens.issue({
        purpose: 'email_verification',
        userId: user.id,
        ttlMs: EMAIL_LINK_TTL_MS,
        detail: address,
      });
      const message = deps.composer.composeEmail({
        to: address,
        subject: `Confirm your email address for ${deps.siteName}`,
        paragraphs: [
          `Someone, we hope you, gave this address for the ${deps.siteName} account "${user.username}".`,
          'Open the link below within 24 hours to confirm it. Until then we send nothing else here.',
          'If it was not you, ignore this email: nothing happens without the link.',
        ],
        link: { label: 'Confirm this address', path: `${EMAIL_VERIFICATION_PATH}/${token}` },
      });
      // Not waited for: a slow mail server must not hold up the page (a sign-up's first sign-in).
      // A send that fails voids its link and is logged; the person asks for another.
      const sending = deps.mailer.send(message).then(
        () =>
          audit.record({
            type: 'email_verification_sent',
            userId: user.id,
            username: user.username,
            ip: ip ?? null,
          }),
        async (error: unknown) => {
          deps.logger.error({ err: error, userId: user.id }, 'an email verification link could not be sent');
          await tokens.voidAll(user.id, 'email_verification');
        },
      );
      const tracked = sending.catch((error: unknown) =>
        deps.logger.error({ err: error, userId: user.id }, 'after an email verification link'),
      );
      inFlight.add(tracked);
      void tracked.finally(() => inFlight.delete(tracked));
      return { ok: true };
    },

    async confirm(token, ip) {
      // The account is checked before the link is used up: a link of a disabled or removed
      // account confirms nothing, and is not spent on the way.
      const live = await tokens.peek('email_verification', token);
      const before = live ? await users.findById(live.userId) : null;
      if (!before || before.disabledAt !== null) return { ok: false, reason: 'invalid' };
      const used = await tokens.consume('email_verification', token);
      if (!used || used.detail === null || used.userId !== before.id) return { ok: false, reason: 'invalid' };
      const outcome = await users.confirmEmail(used.userId, used.detail);
      if (outcome !== 'confirmed') return { ok: false, reason: outcome };
      const user = (await users.findById(used.userId)) ?? before;
      await audit.record({
        type: 'email_verified',
        userId: user.id,
        username: user.username,
        ip: ip ?? null,
        detail: before.email && emailKeyOf(before.email) !== emailKeyOf(used.detail) ? EMAIL_REPLACED : null,
      });
      if (!before.email || emailKeyOf(before.email) !== emailKeyOf(used.detail)) {
        // Reset links sent to any earlier mailbox go: it is no longer the account's way back in
        // (after a removal too, whose links must not come back with the next address).
        await tokens.voidAll(user.id, 'password_reset');
      }
      // The address it replaced hears of it: someone who took over the account cannot quietly move its resets.
      if (before.email && emailKeyOf(before.email) !== emailKeyOf(used.detail)) {
        await deps.notices.notify({ type: 'email_changed', user: before, to: before.email, ip });
      }
      return { ok: true, user, address: used.detail };
    },

    async remove({ user, ip }) {
      await users.removeEmail(user.id);
      await tokens.voidAll(user.id, 'password_reset');
      await audit.record({ type: 'email_removed', userId: user.id, username: user.username, ip: ip ?? null });
      if (user.email) await deps.notices.notify({ type: 'email_changed', user, to: user.email, ip });
    },

    async isLive(token) {
      return (await tokens.peek('email_verification', token)) !== null;
    },
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
