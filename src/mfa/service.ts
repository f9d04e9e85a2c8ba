import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { SendGuard } from '../fraud/send-guard.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { Challenge, ChallengeStore, CloseReason } from './challenge-store.js';
import type { CodeEntryCeiling } from './code-entry-ceiling.js';
import { describeFailedSend, settleFailedSend } from './failed-send.js';
import { isStepUpScope, describeChannel, verifyWindowMinutes, type Channel, type Scope } from './provider.js';
import type { ProviderPool } from './providers/pool.js';

export type { Challenge } from './challenge-store.js';

/**
 * The rules of one-time codes. Providers deliver and check; this module decides whether a code
 * may be sent, whether a guess may be made, and what a result means. It never sees req/res:
 * challenges are kept in the challenge store, and the caller keeps only their ids.
 */

export interface MfaRules {
  codeTtlMs: number;
  maxAttemptsPerCode: number;
  /** Per account and scope, across sessions: a new login does not skip it. */
  resendCooldownMs: number;
  maxSendsPerWindow: number;
  sendWindowMs: number;
  /** Wrong codes across every code of the account before verification is locked for a while. */
  maxFailuresPerAccount: number;
  failureWindowMs: number;
}

export const DEFAULT_MFA_RULES: Omit<MfaRules, 'codeTtlMs'> = {
  maxAttemptsPerCode: 5,
  resendCooldownMs: 30_000,
  maxSendsPerWindow: 5,
  sendWindowMs: 15 * 60_000,
  maxFailuresPerAccount: 10,
  failureWindowMs: 15 * 60_000,
};

export interface CodeRecipient {
  userId: number;
  username: string;
  phone: string;
}

export type SendOutcome =
  | { ok: true; challenge: Challenge }
  /** `pending`: the account's code in this scope that is still open, which the caller may adopt. */
  | { ok: false; reason: 'cooldown'; retryAfterSeconds: number; pending: Challenge | null }
  | { ok: false; reason: 'too_many_codes' | 'locked'; retryAfterSeconds: number }
  | { ok: false; reason: 'channel_unavailable' }
  // The toll-fraud guard: a site-wide limit (never named to the person), or a number codes may not go to.
  | { ok: false; reason: 'not_now'; retryAfterSeconds: number }
  | { ok: false; reason: 'destination_refused'; message: string }
  | { ok: false; reason: 'suspended' };

/**
 * Each check (verifyCode, checkFactorGuess) reads first whether the account's code entry is
 * suspended: a 'suspended' outcome says it is, any other that it was not when this request asked,
 * so a page that answers the outcome need not read it again.
 */
export type VerifyOutcome =
  | { ok: true; challenge: Challenge }
  | { ok: false; reason: 'wrong_code'; challenge: Challenge; attemptsLeft: number }
  | { ok: false; reason: 'expired' | 'used_up' | 'replaced'; challenge: Challenge }
  | {
      ok: false;
      reason: 'locked';
      challenge: Challenge;
      retryAfterSeconds: number;
      /** 'session': the step-up's own limit of the session that guessed (see verifyCode's stepUpSession). */
      lockedBy?: 'account' | 'session';
    }
  | { ok: false; reason: 'suspended'; challenge: Challenge };

/**
 * A code the site checks itself (an authenticator app's, a recovery code): no challenge, the same
 * limits; 'suspended', or not, as for VerifyOutcome.
 */
export type FactorGuessOutcome =
  | { ok: true }
  | { ok: false; reason: 'wrong' }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number; lockedBy: 'account' | 'session' | 'factor' }
  | { ok: false; reason: 'suspended' };

export interface MfaService {
  /** Channels the configured providers can deliver over. */
  channels(): Channel[];
  /** Sends a new code; the account's earlier open code in that scope is voided once it is out. */
  sendCode(request: {
    recipient: CodeRecipient;
    scope: Scope;
    channel: Channel;
    ip?: string;
    /** The client's address as per-address limits count it (src/http/client-address.ts). */
    clientKey: string;
  }): Promise<SendOutcome>;
  verifyCode(request: {
    challenge: Challenge;
    code: string;
    username: string;
    ip?: string;
    /**
     * A step-up (admin, settings, a new number) from a signed-in session: an opaque key of that
     * session. Its wrong codes count against the session, not the account: a stolen cookie must
     * not be a way to pause or suspend the owner's logins (they would otherwise need the password).
     */
    stepUpSession?: string;
  }): Promise<VerifyOutcome>;
  /**
   * A guess at a code the site checks itself (an authenticator app, a recovery code), under the
   * same limits as a phone code: the suspension, the account's (or the step-up session's) wrong
   * codes in the window, the run of wrong codes in a row; and `ownLimit`, a bucket of the factor's
   * own (recovery codes: 10 an hour). The failure is reserved before `compare` runs and handed back
   * when it answers true, so parallel guesses cannot pass the limits together.
   */
  checkFactorGuess(request: {
    userId: number;
    username: string;
    ip?: string;
    stepUpSession?: string;
    /** What the audit line calls the code: "authenticator app code", "recovery code". */
    describedAs: string;
    /** `onPaused`: told once, by the wrong guess that fills the bucket (the owner hears of it). */
    ownLimit?: { key: string; max: number; windowMs: number; onPaused?: () => Promise<void> };
    compare: () => Promise<boolean>;
  }): Promise<FactorGuessOutcome>;
  /**
   * An answer nobody can guess (a passkey's signature over a one-time challenge). It is no wrong
   * guess, and neither the account's pause nor its suspension stops it: a stranger with only the
   * password brings those about with wrong codes, and must not lock the owner's passkey out with
   * them. At a step-up (`stepUpSession`) refused answers still count against that session, which
   * ends at the same limit as for wrong codes; a right one clears that count, as a right code does.
   */
  checkUnguessableFactor(request: {
    userId: number;
    username: string;
    ip?: string;
    stepUpSession?: string;
    compare: () => Promise<boolean>;
  }): Promise<Exclude<FactorGuessOutcome, { reason: 'suspended' }>>;
  findChallenge(id: string): Promise<Challenge | null>;
  /** Seconds until another code may be sent after this one (0 when it may be sent now). */
  cooldownRemainingSeconds(challenge: Challenge): number;
  attemptsLeft(challenge: Challenge): number;
  /** Seconds until the account may enter codes again after too many wrong ones, or null. */
  lockedForSeconds(userId: number): Promise<number | null>;
  /** True once 100 wrong codes in a row suspended the account's code entry, until an admin unlocks it. */
  isCodeEntrySuspended(userId: number): Promise<boolean>;
  /**
   * An admin's unlock: lifts the suspension (100 wrong codes in a row) and ends the pause after
   * too many wrong codes in the window, so the account may enter codes at once. What it lifted is
   * said back. The send limits stay: they guard the bill, not the account.
   */
  unlockCodeEntry(userId: number): Promise<{ wasSuspended: boolean; wasPaused: boolean }>;
  isExpired(challenge: Challenge): boolean;
}

export interface MfaServiceDeps {
  providers: ProviderPool;
  challenges: ChallengeStore;
  limits: RateLimitStore;
  clock: Clock;
  rules: MfaRules;
  audit: AuditLog;
  /** The toll-fraud guard every code passes, whatever the scope or channel (src/fraud/). */
  sendGuard: SendGuard;
  ceiling: CodeEntryCeiling;
  logger: Logger;
  /**
   * Told when wrong codes pause (for a while) or suspend (until an admin unlocks) an account's
   * code entry: the account's owner hears of it by email (issue 11). Never blocks the answer.
   */
  onCodeEntryPaused?: (userId: number, how: 'paused' | 'suspended') => Promise<void>;
}

/**
 * Codes sent to an account in a window, counted apart for the step-ups (admin, settings, reset):
 * codes someone asks for from a stolen session, or from a reset link, must never use up the codes
 * its owner needs to log in (an attack review starved an owner's logins for a day that way).
 */
const sendsKey = (userId: number, scope: Scope) =>
  isStepUpScope(scope) ? `mfa:sends:${userId}:step-up` : `mfa:sends:${userId}`;
const failuresKey = (userId: number) => `mfa:failures:${userId}`;
/** Wrong recovery codes of an account at login (a reset counts per session instead: see mfa/routes.ts). */
export const recoveryFailuresKey = (userId: number) => `mfa:recovery-failures:${userId}`;
/** Wrong app codes of an account at resets, across sessions. */
export const resetAppFailuresKey = (userId: number) => `mfa:reset-app-failures:${userId}`;
const stepUpFailuresKey = (userId: number, session: string) => `mfa:step-up-failures:${userId}:${session}`;
/**
 * The resend cooldown of an account, scope and number: a number corrected at sign-up gets its code
 * at once, since the one in flight went elsewhere (the sign-up limits bound such corrections).
 */
const cooldownKey = (userId: number, scope: Scope, phone: string) =>
  `mfa:cooldown:${userId}:${scope}:${phone}`;

/** What a person is told about a challenge that was closed before this request got to it. */
function closedOutcomeReason(reason: CloseReason | null): 'expired' | 'used_up' | 'replaced' {
  if (reason === 'replaced' || reason === 'expired') return reason;
  return 'used_up';
}

export function createMfaService(deps: MfaServiceDeps): MfaService {
  const { providers, challenges, limits, clock, rules, audit, sendGuard, ceiling } = deps;
  const now = () => clock.now().getTime();
  const secondsUntil = (at: number) => Math.max(1, Math.ceil((at - now()) / 1000));
  const isExpired = (challenge: Challenge) => now() >= challenge.expiresAt;

  async function lockedFor(userId: number): Promise<number | null> {
    const failures = await limits.get(failuresKey(userId));
    if (!failures || failures.count < rules.maxFailuresPerAccount) return null;
    return secondsUntil(failures.resetAt.getTime());
  }

  async function tellOwnerCodeEntryPaused(userId: number, how: 'paused' | 'suspended') {
    try {
      await deps.onCodeEntryPaused?.(userId, how);
    } catch (error) {
      deps.logger.error({ err: error, userId }, 'the owner could not be told that code entry was paused');
    }
  }

  const cooldownRemainingSeconds = (challenge: Challenge) =>
    Math.max(0, Math.ceil((challenge.sentAt + rules.resendCooldownMs - now()) / 1000));

  const attemptsLeft = (challenge: Challenge) =>
    challenge.closedAt !== null ? 0 : Math.max(0, rules.maxAttemptsPerCode - challenge.wrongAttempts);

  async function openChallengeOf(userId: number, scope: Scope): Promise<Challenge | null> {
    const open = await challenges.findOpen(userId, scope);
    return open && !isExpired(open) ? open : null;
  }

  /**
   * What a wrong guess (at a phone code, an app code, a recovery code) leads to, once its failure is
   * counted in `failures`: the audit line, the run of wrong codes in a row (which may suspend code
   * entry), and the pause when the window's limit is reached. Null: the person may try again.
   */
  async function countWrongGuess(options: {
    base: { userId: number; username: string; ip?: string };
    stepUpSession: string | undefined;
    failures: { count: number; resetAt: Date };
    describedAs: string;
  }): Promise<'suspended' | { retryAfterSeconds: number; lockedBy: 'account' | 'session' } | null> {
    const { base, stepUpSession, failures } = options;
    const lockedBy = stepUpSession === undefined ? ('account' as const) : ('session' as const);
    await audit.record({ ...base, type: 'code_failed', detail: options.describedAs });
    // Counted after the comparison: the windowed limit already caps parallel guesses. A step-up's
    // wrong codes stay out of the account's run of wrong codes: its owner's logins must not be
    // suspended by whoever holds a stolen session or a reset link.
    const inARow = stepUpSession === undefined ? await ceiling.recordFailure(base.userId) : null;
    if (inARow?.suspendedNow) {
      await audit.record({
        ...base,
        type: 'code_entry_suspended',
        detail: `${inARow.consecutive} wrong codes in a row`,
      });
      deps.logger.error(
        { userId: base.userId, consecutive: inARow.consecutive },
        'code entry suspended after too many wrong codes in a row: an admin must unlock the account',
      );
      await tellOwnerCodeEntryPaused(base.userId, 'suspended');
    }
    if (inARow && inARow.consecutive >= ceiling.maxConsecutiveFailures) return 'suspended';
    if (failures.count >= rules.maxFailuresPerAccount) {
      await audit.record({
        ...base,
        type: 'code_lockout',
        detail:
          lockedBy === 'session'
            ? `${failures.count} wrong step-up codes in one session`
            : `${failures.count} wrong codes`,
      });
      // The owner hears of a pause of the account's code entry, not of a session's own limit.
      if (lockedBy === 'account' && failures.count === rules.maxFailuresPerAccount)
        await tellOwnerCodeEntryPaused(base.userId, 'paused');
      return { retryAfterSeconds: secondsUntil(failures.resetAt.getTime()), lockedBy };
    }
    return null;
  }

  return {
    channels: () => providers.channels(),
    cooldownRemainingSeconds,
    attemptsLeft,
    lockedForSeconds: lockedFor,
    isCodeEntrySuspended: (userId) => ceiling.isSuspended(userId),
    async unlockCodeEntry(userId) {
      const wasPaused = (await lockedFor(userId)) !== null;
      // The recovery codes' and the reset app codes' own pauses too: an admin unlocks an account
      // most often for someone who lost their phone, whose way in is exactly those.
      await Promise.all(
        [failuresKey(userId), recoveryFailuresKey(userId), resetAppFailuresKey(userId)].map((key) =>
          limits.reset(key),
        ),
      );
      const wasSuspended = await ceiling.unlock(userId);
      // The count of wrong codes in a row starts again too, suspended or not.
      await ceiling.recordSuccess(userId);
      return { wasSuspended, wasPaused };
    },
    isExpired,
    findChallenge: (id) => challenges.findById(id),

    async sendCode({ recipient, scope, channel, ip, clientKey }) {
      if (!providers.channels().includes(channel)) return { ok: false, reason: 'channel_unavailable' };
      if (await ceiling.isSuspended(recipient.userId)) return { ok: false, reason: 'suspended' };

      const lockedSeconds = await lockedFor(recipient.userId);
      if (lockedSeconds !== null) return { ok: false, reason: 'locked', retryAfterSeconds: lockedSeconds };

      // The cooldown belongs to the account and scope, not to a session: logging in again, in
      // this browser or another, does not send another code before it ends. It is claimed in the
      // shared store, so of several sends racing (resends, parallel logins) only one goes out.
      const claim = await limits.increment(
        cooldownKey(recipient.userId, scope, recipient.phone),
        rules.resendCooldownMs,
      );
      if (claim.count > 1) {
        const pending = await openChallengeOf(recipient.userId, scope);
        return {
          ok: false,
          reason: 'cooldown',
          retryAfterSeconds: secondsUntil(claim.resetAt.getTime()),
          // Only a code on its way to this number is one to wait for (a number corrected back
          // and forth at sign-up has another in flight).
          pending: pending?.phone === recipient.phone ? pending : null,
        };
      }
      const giveBackClaim = () => limits.reset(cooldownKey(recipient.userId, scope, recipient.phone));

      // The send cap is likewise taken before the send, not counted after it. Handed back (the
      // send was refused, or surely sent nothing), it goes to the window it was taken in: a
      // provider that failed after that window ended must not give the next one a free code.
      const sends = await limits.increment(sendsKey(recipient.userId, scope), rules.sendWindowMs);
      const giveBackSend = async () => {
        await limits.decrement(sendsKey(recipient.userId, scope), sends.window);
      };
      if (sends.count > rules.maxSendsPerWindow) {
        await giveBackSend();
        await giveBackClaim();
        return {
          ok: false,
          reason: 'too_many_codes',
          retryAfterSeconds: secondsUntil(sends.resetAt.getTime()),
        };
      }
      // The toll-fraud guard (issue 8): site-wide limits, last, once the account itself may send.
      const guarded = await sendGuard.reserveSend({
        userId: recipient.userId,
        username: recipient.username,
        to: recipient.phone,
        clientKey,
        channel,
        scope,
      });
      if (!guarded.allowed) {
        await giveBackClaim();
        await giveBackSend();
        return 'message' in guarded
          ? { ok: false, reason: 'destination_refused', message: guarded.message }
          : { ok: false, reason: 'not_now', retryAfterSeconds: guarded.retryAfterSeconds };
      }

      let sent: { provider: string; handle?: string };
      try {
        sent = await providers.send({
          to: recipient.phone,
          channel,
          scope,
          account: recipient.userId,
          provenHolder: guarded.provenHolder,
        });
      } catch (error) {
        // A code that never went out does not count against the person; one that may have does (failed-send.ts).
        const delivered = await settleFailedSend(error, {
          guard: guarded,
          giveBackSends: giveBackSend,
          giveBackCooldown: giveBackClaim,
        });
        await audit.record({
          type: 'code_send_failed',
          userId: recipient.userId,
          username: recipient.username,
          ip,
          detail: describeFailedSend(error, { scope, channel }, delivered),
        });
        throw error;
      }

      await guarded.confirm();
      const sentAt = now();
      const challenge = await challenges.create({
        id: randomBytes(16).toString('base64url'),
        userId: recipient.userId,
        scope,
        phone: recipient.phone,
        channel,
        provider: sent.provider,
        ...(sent.handle === undefined ? {} : { handle: sent.handle }),
        sentAt,
        expiresAt: sentAt + rules.codeTtlMs,
      });
      // The new code is out; now void every earlier one of the account in this scope, whichever
      // session asked for it, so only the newest code can ever be accepted. The provider's cancel
      // is not awaited: a slow cancel must not hold the page, and the closed row refuses it anyway.
      const replaced = await challenges.closeOthers(recipient.userId, scope, challenge.id, 'replaced');
      for (const old of replaced) {
        providers
          .cancel(old.provider, { to: old.phone, scope: old.scope, handle: old.handle })
          .catch(() => undefined);
      }

      await audit.record({
        type: 'code_sent',
        userId: recipient.userId,
        username: recipient.username,
        ip,
        detail: `${scope} code by ${describeChannel(channel)} via ${sent.provider}`,
      });
      return { ok: true, challenge };
    },

    async checkFactorGuess({ userId, username, ip, stepUpSession, describedAs, ownLimit, compare }) {
      const base = { userId, username, ip };
      const failureBucket =
        stepUpSession === undefined ? failuresKey(userId) : stepUpFailuresKey(userId, stepUpSession);
      const lockedBy = stepUpSession === undefined ? ('account' as const) : ('session' as const);
      if (await ceiling.isSuspended(userId)) return { ok: false, reason: 'suspended' };
      const lockedSeconds = await lockedFor(userId);
      if (lockedSeconds !== null) {
        return { ok: false, reason: 'locked', retryAfterSeconds: lockedSeconds, lockedBy: 'account' };
      }
      // Reserved before the comparison, handed back when it is right (see verifyCode).
      const failures = await limits.increment(failureBucket, rules.failureWindowMs);
      const own = ownLimit ? await limits.increment(ownLimit.key, ownLimit.windowMs) : null;
      // Each goes back to the window it was counted in (see verifyCode).
      const handBack = async () => {
        await limits.decrement(failureBucket, failures.window);
        if (ownLimit && own) await limits.decrement(ownLimit.key, own.window);
      };
      if (failures.count > rules.maxFailuresPerAccount) {
        await handBack();
        return {
          ok: false,
          reason: 'locked',
          lockedBy,
          retryAfterSeconds: secondsUntil(failures.resetAt.getTime()),
        };
      }
      if (own && ownLimit && own.count > ownLimit.max) {
        await handBack();
        return {
          ok: false,
          reason: 'locked',
          lockedBy: 'factor',
          retryAfterSeconds: secondsUntil(own.resetAt.getTime()),
        };
      }
      let right: boolean;
      try {
        right = await compare();
      } catch (error) {
        await handBack();
        throw error;
      }
      if (right) {
        await handBack();
        await limits.reset(failureBucket);
        if (stepUpSession === undefined) await ceiling.recordSuccess(userId);
        return { ok: true };
      }
      // The factor's own pause starts with this guess: said before any other consequence, which
      // would otherwise return first.
      if (own && ownLimit?.onPaused && own.count === ownLimit.max) {
        try {
          await ownLimit.onPaused();
        } catch (error) {
          deps.logger.error({ err: error, userId }, 'the owner could not be told of a paused factor');
        }
      }
      const consequence = await countWrongGuess({ base, stepUpSession, failures, describedAs });
      if (consequence === 'suspended') return { ok: false, reason: 'suspended' };
      if (consequence) return { ok: false, reason: 'locked', ...consequence };
      if (own && ownLimit && own.count >= ownLimit.max) {
        return {
          ok: false,
          reason: 'locked',
          lockedBy: 'factor',
          retryAfterSeconds: secondsUntil(own.resetAt.getTime()),
        };
      }
      return { ok: false, reason: 'wrong' };
    },

    async checkUnguessableFactor({ userId, username, ip, stepUpSession, compare }) {
      // At a login nothing is counted: the account's buckets are for guesses, and each answer
      // needs a challenge of its own (the per-address flood guards bound how fast they come).
      if (stepUpSession === undefined)
        return (await compare()) ? { ok: true } : { ok: false, reason: 'wrong' };
      const bucket = stepUpFailuresKey(userId, stepUpSession);
      // Reserved before the check, as in checkFactorGuess, so parallel answers stop at the limit.
      const failures = await limits.increment(bucket, rules.failureWindowMs);
      const lockedForSession = () =>
        ({
          ok: false,
          reason: 'locked',
          lockedBy: 'session',
          retryAfterSeconds: secondsUntil(failures.resetAt.getTime()),
        }) as const;
      const handBack = () => limits.decrement(bucket, failures.window);
      if (failures.count > rules.maxFailuresPerAccount) {
        await handBack();
        return lockedForSession();
      }
      let right: boolean;
      try {
        right = await compare();
      } catch (error) {
        await handBack();
        throw error;
      }
      if (right) {
        await limits.reset(bucket);
        return { ok: true };
      }
      if (failures.count >= rules.maxFailuresPerAccount) {
        await audit.record({
          userId,
          username,
          ip,
          type: 'code_lockout',
          detail: `${failures.count} wrong step-up answers in one session`,
        });
        return lockedForSession();
      }
      return { ok: false, reason: 'wrong' };
    },

    async verifyCode({ challenge, code, username, ip, stepUpSession }) {
      const base = { userId: challenge.userId, username, ip };
      const failureBucket =
        stepUpSession === undefined
          ? failuresKey(challenge.userId)
          : stepUpFailuresKey(challenge.userId, stepUpSession);
      const lockedBy = stepUpSession === undefined ? ('account' as const) : ('session' as const);

      if (await ceiling.isSuspended(challenge.userId)) {
        return { ok: false, reason: 'suspended', challenge };
      }
      const lockedSeconds = await lockedFor(challenge.userId);
      if (lockedSeconds !== null) {
        return { ok: false, reason: 'locked', challenge, retryAfterSeconds: lockedSeconds };
      }
      if (isExpired(challenge)) {
        await challenges.close(challenge.id, 'expired');
        return {
          ok: false,
          reason: 'expired',
          challenge: { ...challenge, closedAt: now(), closeReason: 'expired' },
        };
      }

      // The attempt is taken in the store before the code is compared, so parallel requests
      // cannot make more guesses than the rule allows, nor guess at a closed challenge.
      const attemptsUsed = await challenges.reserveAttempt(challenge.id, rules.maxAttemptsPerCode);
      if (attemptsUsed === null) {
        const current = (await challenges.findById(challenge.id)) ?? challenge;
        return { ok: false, reason: closedOutcomeReason(current.closeReason), challenge: current };
      }

      // Likewise the account-wide failure is reserved before the comparison and handed back
      // when the guess turns out right (or was never compared), so many sessions guessing at once
      // still stop at the account's limit. Race: the provider may answer (or fail, or say
      // "expired") after the window the failure was counted in has ended. Taken from the window
      // open by then, the hand-back would be a free guess there, one per boundary a slow check
      // crosses; so it goes back to its own window, or nowhere once that one has ended.
      const failures = await limits.increment(failureBucket, rules.failureWindowMs);
      const handBackFailure = () => limits.decrement(failureBucket, failures.window);
      const handBack = async () => {
        await handBackFailure();
        await challenges.releaseAttempt(challenge.id);
      };
      if (failures.count > rules.maxFailuresPerAccount) {
        await handBack();
        return {
          ok: false,
          reason: 'locked',
          lockedBy,
          challenge,
          retryAfterSeconds: secondsUntil(failures.resetAt.getTime()),
        };
      }

      // Ask only the provider that sent this code, with this challenge's scope and number: a code
      // sent for another scope, or by another provider, can never satisfy it.
      let outcome: Awaited<ReturnType<ProviderPool['verify']>>;
      try {
        outcome = await providers.verify(challenge.provider, {
          to: challenge.phone,
          scope: challenge.scope,
          code,
          handle: challenge.handle,
          maxAgeMinutes: verifyWindowMinutes(challenge.sentAt, now()),
        });
      } catch (error) {
        await handBack();
        throw error;
      }

      if (outcome === 'valid') {
        await handBackFailure();
        // Accepting is one conditional write: of two requests with the right code (two tabs, two
        // instances), or one racing a newer code that replaced this one, exactly one gets through.
        if (!(await challenges.close(challenge.id, 'accepted'))) {
          const current = (await challenges.findById(challenge.id)) ?? challenge;
          return { ok: false, reason: closedOutcomeReason(current.closeReason), challenge: current };
        }
        await limits.reset(failureBucket);
        // A step-up's right code says nothing of the logins that failed (nor do its wrong ones).
        if (stepUpSession === undefined) await ceiling.recordSuccess(challenge.userId);
        await sendGuard.recordVerified({ to: challenge.phone, userId: challenge.userId });
        // The code did its job: the next login may have a code at once.
        await limits.reset(cooldownKey(challenge.userId, challenge.scope, challenge.phone));
        return { ok: true, challenge: { ...challenge, closedAt: now(), closeReason: 'accepted' } };
      }
      if (outcome === 'expired') {
        await handBack();
        await challenges.close(challenge.id, 'expired');
        return {
          ok: false,
          reason: 'expired',
          challenge: { ...challenge, closedAt: now(), closeReason: 'expired' },
        };
      }

      const usedUp = outcome === 'locked' || attemptsUsed >= rules.maxAttemptsPerCode;
      if (usedUp) await challenges.close(challenge.id, 'used_up');
      const updated: Challenge = {
        ...challenge,
        wrongAttempts: attemptsUsed,
        ...(usedUp ? { closedAt: now(), closeReason: 'used_up' as const } : {}),
      };
      const consequence = await countWrongGuess({
        base,
        stepUpSession,
        failures,
        describedAs: `${challenge.scope} code, attempt ${attemptsUsed}`,
      });
      if (consequence === 'suspended') {
        if (!usedUp) await challenges.close(challenge.id, 'locked');
        return {
          ok: false,
          reason: 'suspended',
          challenge: { ...updated, closedAt: now(), closeReason: 'locked' },
        };
      }
      if (consequence) return { ok: false, reason: 'locked', challenge: updated, ...consequence };
      if (usedUp) return { ok: false, reason: 'used_up', challenge: updated };
      return { ok: false, reason: 'wrong_code', challenge: updated, attemptsLeft: attemptsLeft(updated) };
    },
  };
}
