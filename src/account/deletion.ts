import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuditLog } from '../audit/log.js';
import type { AccountSessions } from '../auth/account-sessions.js';
import type { Clock } from '../clock.js';
import type { EmailComposer } from '../email/compose.js';
import type { Mailer } from '../email/mailer.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { User, UserStore } from '../users/store.js';
import { usernameKeyOf } from '../users/username.js';
import { tokenDigest, type OneTimeToken, type OneTimeTokenStore } from './one-time-tokens.js';
import { EMAIL_REPLACED } from './email-verification.js';

/**
 * Deleting an account (issue 11; the one-time-URL sample). After a fresh settings code the person
 * types their username. With a verified email, a link valid 30 minutes goes there, and it works
 * only in the browser session that asked: the session keeps a random binding and the link's token
 * only its digest, so neither a copy of the email nor a copy of the database is enough, nor another
 * browser signed in to the same account. Without a verified email there is no second channel to
 * confirm by: the typed name after the settings code deletes at once.
 *
 * Deleting removes the account's row (its challenges, links and counters go with it by ON DELETE
 * CASCADE), ends every session of the account, and keeps its audit events under a pseudonym.
 */
declare module 'express-session' {
  interface SessionData {
    /**
     * This browser asked to delete the account: the link emailed works only where `binding` is
     * (the token keeps its SHA-256). Carried over when a step-up gives the session a new id.
     */
    deletionRequest?: { userId: number; binding: string; requestedAt: number };
  }
}

export const DELETION_PATH = '/account/delete';
export const DELETION_LINK_TTL_MS = 30 * 60_000;
/** Links an account may ask for in an hour: enough to ask again, too few to flood its own mailbox. */
export const DELETION_EMAILS_PER_ACCOUNT_PER_HOUR = 5;
/** After the verified email is removed or replaced, deletion waits this long. */
export const EMAIL_CHANGE_COOLING_OFF_MS = 24 * 60 * 60_000;
const HOUR_MS = 60 * 60_000;

export type DeletionRequest = NonNullable<import('express-session').SessionData['deletionRequest']>;

/** What the person asked for, after the settings code and the typed name. */
export type RequestOutcome =
  /** An email with the link is on its way; the caller keeps `request` in the session. */
  | { kind: 'link_sent'; to: string; request: DeletionRequest }
  /** No verified email: the account is gone. */
  | { kind: 'deleted' }
  | { kind: 'last_admin' }
  | { kind: 'too_many'; retryAfterSeconds: number }
  | { kind: 'unavailable' }
  /** The verified address was removed or replaced lately: see EMAIL_CHANGE_COOLING_OFF_MS. */
  | { kind: 'email_changed_lately'; until: Date };

export type ConfirmOutcome =
  | { kind: 'deleted' }
  /** Unknown, used, expired or voided by a newer link. */
  | { kind: 'invalid' }
  /** A live link opened in another browser (or signed in as another account): it stays usable. */
  | { kind: 'wrong_browser' }
  | { kind: 'last_admin' };

export interface AccountDeletion {
  /** Whether `typed` names this account, compared as login compares names. */
  isOwnName(user: User, typed: string): boolean;
  /** The typed name matched: email the link, or, without a verified email, delete now. */
  request(user: User, ip?: string): Promise<RequestOutcome>;
  /** The link as it stands, and whether this browser's request is the one it was made for. */
  inspect(
    token: string,
    request: DeletionRequest | undefined,
    user: User | undefined,
  ): Promise<'live' | 'wrong_browser' | 'invalid'>;
  /** The confirm button on the link's page. */
  confirm(
    token: string,
    request: DeletionRequest | undefined,
    user: User | undefined,
    ip?: string,
  ): Promise<ConfirmOutcome>;
}

export function createAccountDeletion(deps: {
  users: UserStore;
  tokens: OneTimeTokenStore;
  audit: AuditLog;
  mailer: Mailer;
  composer: EmailComposer;
  limits: RateLimitStore;
  /** Ends every session of an account, in every browser and instance (src/auth/account-sessions.ts). */
  accountSessions: Pick<AccountSessions, 'endAllForUser'>;
  clock: Clock;
  logger: Logger;
  siteName: string;
}): AccountDeletion {
  const { users, tokens, audit, clock, logger } = deps;

  /** This browser's binding is the one the link was made for, for this account (constant time). */
  function isBoundHere(token: OneTimeToken, request: DeletionRequest | undefined, user: User | undefined) {
    if (!request || !user || token.detail === null) return false;
    if (request.userId !== user.id || token.userId !== user.id) return false;
    const expected = Buffer.from(token.detail, 'utf8');
    const given = Buffer.from(tokenDigest(request.binding), 'utf8');
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  async function takeAllowance(userId: number): Promise<number | null> {
    const key = `account-deletion:account:${userId}`;
    const window = await deps.limits.increment(key, HOUR_MS);
    if (window.count <= DELETION_EMAILS_PER_ACCOUNT_PER_HOUR) return null;
    await deps.limits.decrement(key, window.window);
    return Math.max(1, Math.ceil((window.resetAt.getTime() - clock.now().getTime()) / 1000));
  }

  /**
   * The deletion itself. The row goes first, in one transaction that refuses the last admin (two
   * admins deleting themselves at once: one stays). Then the audit events are rewritten: found by
   * the account's name key, since the row's deletion cleared their account id. A crash between the
   * two would leave the name on those events, never a live account's events renamed.
   */
  async function deleteAccount(user: User, ip?: string): Promise<'deleted' | 'last_admin'> {
    const outcome = await users.deleteAccount(user.id);
    if (outcome === 'last_admin') return 'last_admin';
    // 'no_such_account': a racing request deleted it a moment ago; what follows is idempotent.
    // A colon no username may hold (src/auth/schemas.ts): no live account can take a deleted one's
    // name, nor have its failed logins filed under it; 64 bits, so two never meet by chance.
    const pseudonym = `deleted:${randomBytes(8).toString('hex')}`;
    await audit.pseudonymizeAccount({ userId: user.id, username: user.username }, pseudonym);
    try {
      await deps.accountSessions.endAllForUser(user.id);
    } catch (error) {
      // The account is gone either way: a session left behind finds no account at its next page
      // (its id is never given to another account).
      logger.error({ err: error }, 'the sessions of a deleted account could not all be ended');
    }
    if (outcome === 'deleted') {
      await audit.record({ type: 'account_deleted', username: pseudonym, ip: ip ?? null });
    }
    return 'deleted';
  }

  /**
   * When the account's verified address was last removed or replaced, within the cooling-off
   * period; else null. Without it, one settings code (a session and the phone) could remove the
   * address, or move it to another mailbox, and delete at once: the link to the owner's mailbox
   * would protect nothing.
   */
  async function lastEmailChange(userId: number): Promise<number | null> {
    const since = new Date(clock.now().getTime() - EMAIL_CHANGE_COOLING_OFF_MS);
    const events = await audit.forUser(userId, since);
    const change = events.find(
      (event) =>
        event.type === 'email_removed' ||
        (event.type === 'email_verified' && event.detail === EMAIL_REPLACED),
    );
    return change ? change.at.getTime() : null;
  }

  /** The only admin: refused before any link is sent (and again, atomically, when deleting). */
  async function isLastAdmin(user: User) {
    if (!user.isAdmin) return false;
    return (await users.listAdmins()).length <= 1;
  }

  return {
    isOwnName(user, typed) {
      return usernameKeyOf(typed) === usernameKeyOf(user.username);
    },

    async request(user, ip) {
      if (await isLastAdmin(user)) return { kind: 'last_admin' };
      const changedAt = await lastEmailChange(user.id);
      if (changedAt !== null) {
        return { kind: 'email_changed_lately', until: new Date(changedAt + EMAIL_CHANGE_COOLING_OFF_MS) };
      }
      if (!user.email) {
        const outcome = await deleteAccount(user, ip);
        return { kind: outcome };
      }
      const retryAfterSeconds = await takeAllowance(user.id);
      if (retryAfterSeconds !== null) return { kind: 'too_many', retryAfterSeconds };
      const request: DeletionRequest = {
        userId: user.id,
        binding: randomBytes(32).toString('base64url'),
        requestedAt: clock.now().getTime(),
      };
      // A new link voids the one before: only the newest email, in the newest asking browser, works.
      const token = await tokens.issue({
        purpose: 'account_deletion',
        userId: user.id,
        ttlMs: DELETION_LINK_TTL_MS,
        detail: tokenDigest(request.binding),
      });
      try {
        await deps.mailer.send(
          deps.composer.composeEmail({
            to: user.email,
            subject: `Confirm the deletion of your ${deps.siteName} account`,
            paragraphs: [
              `Hello ${user.username},`,
              `Someone signed in to your account asked to delete it. To delete it, open the link below within 30 minutes, in the same browser where you asked, and confirm.`,
              'Deleting cannot be undone: your account, its phone number and email address are removed.',
              'If this was not you, do not open the link, change your password and tell the site’s admins.',
            ],
            link: { label: 'Delete my account', path: `${DELETION_PATH}/${token}` },
          }),
        );
      } catch (error) {
        logger.error({ err: error, userId: user.id }, 'an account deletion link could not be sent');
        await tokens.voidAll(user.id, 'account_deletion');
        return { kind: 'unavailable' };
      }
      const base = { userId: user.id, username: user.username, ip: ip ?? null };
      await audit.record({ ...base, type: 'account_deletion_requested' });
      // The email is the "deletion requested" notice as well: in the security log as one.
      await audit.record({ ...base, type: 'notice_sent', detail: 'deletion_requested' });
      return { kind: 'link_sent', to: user.email, request };
    },

    async inspect(token, request, user) {
      const live = await tokens.peek('account_deletion', token);
      if (!live) return 'invalid';
      return isBoundHere(live, request, user) ? 'live' : 'wrong_browser';
    },

    async confirm(token, request, user, ip) {
      // The binding is checked before the token is used: a try from another browser leaves the
      // link working in the right one. The token's binding never changes once issued, so of the
      // requests that pass this check, the one whose conditional update wins deletes; the others
      // find it used.
      const live = await tokens.peek('account_deletion', token);
      if (!live) return { kind: 'invalid' };
      if (!isBoundHere(live, request, user)) return { kind: 'wrong_browser' };
      if (await isLastAdmin(user!)) return { kind: 'last_admin' };
      const used = await tokens.consume('account_deletion', token);
      if (!used) return { kind: 'invalid' };
      if (!isBoundHere(used, request, user)) return { kind: 'wrong_browser' };
      const outcome = await deleteAccount(user!, ip);
      return { kind: outcome };
    },
  };
}
