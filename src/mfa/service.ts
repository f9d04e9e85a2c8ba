import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { SendGuard } from '../fraud/send-guard.js';
import type { Logger } from '../logger.js';
import type { CodeEntryCeiling } from './code-entry-ceiling.js';
import { ProviderError, describeChannel, type Channel, type Scope } from './provider.js';
import type { ProviderPool } from './providers/pool.js';

/**
 * The rules of one-time codes. Providers deliver and check; this module decides whether a code
 * may be sent, whether a guess may be made, and what a result means. It never sees req/res:
 * the caller keeps the returned Challenge in the session and hands it back.
 */

export interface MfaRules {
  codeTtlMs: number;
  maxAttemptsPerCode: number;
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

/** One code, sent for one scope to one number by one provider. Held in the session; no code inside. */
export interface Challenge {
  id: string;
  userId: number;
  scope: Scope;
  phone: string;
  channel: Channel;
  provider: string;
  handle?: string;
  sentAt: number;
  expiresAt: number;
  wrongAttempts: number;
  /** Set once the code was accepted or used up its attempts: it can never be accepted again. */
  closed: boolean;
}

export interface CodeRecipient {
  userId: number;
  username: string;
  phone: string;
}

export type SendOutcome =
  | { ok: true; challenge: Challenge }
  | { ok: false; reason: 'cooldown' | 'too_many_codes' | 'locked'; retryAfterSeconds: number }
  | { ok: false; reason: 'channel_unavailable' }
  // The toll-fraud guard: a site-wide limit (never named to the person), or a number codes may not go to.
  | { ok: false; reason: 'not_now'; retryAfterSeconds: number }
  | { ok: false; reason: 'destination_refused'; message: string }
  | { ok: false; reason: 'suspended' };

export type VerifyOutcome =
  | { ok: true; challenge: Challenge }
  | { ok: false; reason: 'wrong_code'; challenge: Challenge; attemptsLeft: number }
  | { ok: false; reason: 'expired' | 'used_up'; challenge: Challenge }
  | { ok: false; reason: 'locked'; challenge: Challenge; retryAfterSeconds: number }
  | { ok: false; reason: 'suspended'; challenge: Challenge };

export interface MfaService {
  readonly rules: MfaRules;
  /** Channels the configured providers can deliver over. */
  channels(): Channel[];
  sendCode(request: {
    recipient: CodeRecipient;
    scope: Scope;
    channel: Channel;
    /** The challenge the session holds now, if any: voided by this send, and the basis of the cooldown. */
    previous?: Challenge;
    ip?: string;
    /** The client's address as per-address limits count it (src/http/client-address.ts). */
    clientKey: string;
  }): Promise<SendOutcome>;
  verifyCode(request: {
    challenge: Challenge;
    code: string;
    username: string;
    ip?: string;
  }): Promise<VerifyOutcome>;
  /** Seconds until another code may be sent for this challenge (0 when it may be sent now). */
  cooldownRemainingSeconds(challenge: Challenge): number;
  attemptsLeft(challenge: Challenge): number;
  /** Seconds until the account may enter codes again after too many wrong ones, or null. */
  lockedForSeconds(userId: number): Promise<number | null>;
  /** True once 100 wrong codes in a row suspended the account's code entry, until an admin unlocks it. */
  isCodeEntrySuspended(userId: number): Promise<boolean>;
  isExpired(challenge: Challenge): boolean;
}

export interface MfaServiceDeps {
  providers: ProviderPool;
  limits: RateLimitStore;
  clock: Clock;
  rules: MfaRules;
  audit: AuditLog;
  /** The toll-fraud guard every code passes, whatever the scope or channel (src/fraud/). */
  sendGuard: SendGuard;
  ceiling: CodeEntryCeiling;
  logger: Logger;
}

const sendsKey = (userId: number) => `mfa:sends:${userId}`;
const failuresKey = (userId: number) => `mfa:failures:${userId}`;
const attemptsKey = (challengeId: string) => `mfa:attempts:${challengeId}`;
const replacedKey = (challengeId: string) => `mfa:replaced:${challengeId}`;

export function createMfaService(deps: MfaServiceDeps): MfaService {
  const { providers, limits, clock, rules, audit, sendGuard, ceiling } = deps;
  const now = () => clock.now().getTime();
  const secondsUntil = (at: number) => Math.max(1, Math.ceil((at - now()) / 1000));

  async function lockedFor(userId: number): Promise<number | null> {
    const failures = await limits.get(failuresKey(userId));
    if (!failures || failures.count < rules.maxFailuresPerAccount) return null;
    return secondsUntil(failures.resetAt.getTime());
  }

  const cooldownRemainingSeconds = (challenge: Challenge) =>
    Math.max(0, Math.ceil((challenge.sentAt + rules.resendCooldownMs - now()) / 1000));

  const attemptsLeft = (challenge: Challenge) =>
    challenge.closed ? 0 : Math.max(0, rules.maxAttemptsPerCode - challenge.wrongAttempts);

  return {
    rules,
    channels: () => providers.channels(),
    cooldownRemainingSeconds,
    attemptsLeft,
    lockedForSeconds: lockedFor,
    isCodeEntrySuspended: (userId) => ceiling.isSuspended(userId),
    isExpired: (challenge) => now() >= challenge.expiresAt,

    async sendCode({ recipient, scope, channel, previous, ip, clientKey }) {
      if (!providers.channels().includes(channel)) return { ok: false, reason: 'channel_unavailable' };
      if (await ceiling.isSuspended(recipient.userId)) return { ok: false, reason: 'suspended' };

      const lockedSeconds = await lockedFor(recipient.userId);
      if (lockedSeconds !== null) return { ok: false, reason: 'locked', retryAfterSeconds: lockedSeconds };

      // The cooldown runs from the code this one replaces. Replacing it is claimed in the shared
      // store, so of several resends racing in one session only one goes out.
      if (previous && previous.userId === recipient.userId) {
        const remaining = cooldownRemainingSeconds(previous);
        if (remaining > 0) return { ok: false, reason: 'cooldown', retryAfterSeconds: remaining };
        const claim = await limits.increment(replacedKey(previous.id), rules.resendCooldownMs);
        if (claim.count > 1) {
          return { ok: false, reason: 'cooldown', retryAfterSeconds: secondsUntil(claim.resetAt.getTime()) };
        }
      }
      // The send cap is likewise taken before the send, not counted after it.
      const sends = await limits.increment(sendsKey(recipient.userId), rules.sendWindowMs);
      if (sends.count > rules.maxSendsPerWindow) {
        await limits.decrement(sendsKey(recipient.userId));
        return {
          ok: false,
          reason: 'too_many_codes',
          retryAfterSeconds: secondsUntil(sends.resetAt.getTime()),
        };
      }
      // BEGIN toll-fraud guard (issue 8): site-wide limits, last, once the account itself may send.
      const guarded = await sendGuard.reserveSend({
        userId: recipient.userId,
        username: recipient.username,
        to: recipient.phone,
        clientKey,
        channel,
        scope,
      });
      if (!guarded.allowed) {
        if (previous) await limits.reset(replacedKey(previous.id));
        await limits.decrement(sendsKey(recipient.userId));
        return 'message' in guarded
          ? { ok: false, reason: 'destination_refused', message: guarded.message }
          : { ok: false, reason: 'not_now', retryAfterSeconds: guarded.retryAfterSeconds };
      }
      // END toll-fraud guard

      let sent: { provider: string; handle?: string };
      try {
        sent = await providers.send({ to: recipient.phone, channel, scope, account: recipient.userId });
      } catch (error) {
        // A code that never went out does not count against the person, who may simply retry.
        await guarded.release();
        if (previous) await limits.reset(replacedKey(previous.id));
        await limits.decrement(sendsKey(recipient.userId));
        audit.record({
          type: 'code_send_failed',
          userId: recipient.userId,
          username: recipient.username,
          ip,
          detail:
            error instanceof ProviderError
              ? `${scope} code by ${describeChannel(channel)}: ${error.provider} ${error.kind}`
              : `${scope} code by ${describeChannel(channel)}`,
        });
        throw error;
      }

      // The new code is out; now void the one before it, so only the newest code of a session can
      // ever be accepted. Not awaited: a slow cancel must not hold the page (each provider call has
      // its own deadline), and the session stops offering the old challenge either way.
      if (previous && !previous.closed && previous.userId === recipient.userId) {
        providers
          .cancel(previous.provider, { to: previous.phone, scope: previous.scope, handle: previous.handle })
          .catch(() => undefined);
      }

      await guarded.confirm();
      const sentAt = now();
      audit.record({
        type: 'code_sent',
        userId: recipient.userId,
        username: recipient.username,
        ip,
        detail: `${scope} code by ${describeChannel(channel)} via ${sent.provider}`,
      });
      return {
        ok: true,
        challenge: {
          id: randomBytes(12).toString('base64url'),
          userId: recipient.userId,
          scope,
          phone: recipient.phone,
          channel,
          provider: sent.provider,
          handle: sent.handle,
          sentAt,
          expiresAt: sentAt + rules.codeTtlMs,
          wrongAttempts: 0,
          closed: false,
        },
      };
    },

    async verifyCode({ challenge, code, username, ip }) {
      const base = { userId: challenge.userId, username, ip };

      if (await ceiling.isSuspended(challenge.userId)) {
        return { ok: false, reason: 'suspended', challenge: { ...challenge, closed: true } };
      }
      const lockedSeconds = await lockedFor(challenge.userId);
      if (lockedSeconds !== null) {
        return { ok: false, reason: 'locked', challenge, retryAfterSeconds: lockedSeconds };
      }
      if (attemptsLeft(challenge) === 0) return { ok: false, reason: 'used_up', challenge };
      if (now() >= challenge.expiresAt) return { ok: false, reason: 'expired', challenge };

      // The attempt is taken from a shared counter before the code is compared, so parallel
      // requests on one session cannot make more guesses than the rule allows.
      const attempt = await limits.increment(
        attemptsKey(challenge.id),
        rules.codeTtlMs + rules.resendCooldownMs,
      );
      if (attempt.count > rules.maxAttemptsPerCode) {
        return { ok: false, reason: 'used_up', challenge: { ...challenge, closed: true } };
      }

      // Likewise the account-wide failure is reserved before the comparison and handed back
      // when the guess turns out right (or was never compared), so many sessions guessing at once
      // still stop at the account's limit.
      const failures = await limits.increment(failuresKey(challenge.userId), rules.failureWindowMs);
      if (failures.count > rules.maxFailuresPerAccount) {
        await limits.decrement(failuresKey(challenge.userId));
        return {
          ok: false,
          reason: 'locked',
          challenge: { ...challenge, closed: true },
          retryAfterSeconds: secondsUntil(failures.resetAt.getTime()),
        };
      }
      const handBack = async () => {
        await limits.decrement(failuresKey(challenge.userId));
        await limits.decrement(attemptsKey(challenge.id));
      };

      // Ask only the provider that sent this code, with this challenge's scope and number: a code
      // sent for another scope, or by another provider, can never satisfy it.
      let outcome: Awaited<ReturnType<ProviderPool['verify']>>;
      try {
        outcome = await providers.verify(challenge.provider, {
          to: challenge.phone,
          scope: challenge.scope,
          code,
          handle: challenge.handle,
          maxAgeMinutes: Math.max(1, Math.ceil((now() - challenge.sentAt) / 60_000)),
        });
      } catch (error) {
        await handBack();
        throw error;
      }

      if (outcome === 'valid') {
        await limits.reset(failuresKey(challenge.userId));
        await ceiling.recordSuccess(challenge.userId);
        await sendGuard.recordVerified(challenge.phone);
        return { ok: true, challenge: { ...challenge, closed: true } };
      }
      if (outcome === 'expired') {
        await handBack();
        return { ok: false, reason: 'expired', challenge: { ...challenge, closed: true } };
      }

      const wrongAttempts = Math.max(challenge.wrongAttempts + 1, attempt.count);
      const closed = outcome === 'locked' || wrongAttempts >= rules.maxAttemptsPerCode;
      const updated = { ...challenge, wrongAttempts, closed };
      audit.record({
        ...base,
        type: 'code_failed',
        detail: `${challenge.scope} code, attempt ${wrongAttempts}`,
      });
      // Counted after the comparison: the windowed limit above already caps parallel guesses.
      const inARow = await ceiling.recordFailure(challenge.userId);
      if (inARow.suspendedNow) {
        audit.record({
          ...base,
          type: 'code_entry_suspended',
          detail: `${inARow.consecutive} wrong codes in a row`,
        });
        deps.logger.error(
          { userId: challenge.userId, consecutive: inARow.consecutive },
          'code entry suspended after too many wrong codes in a row: an admin must unlock the account',
        );
      }
      if (inARow.consecutive >= ceiling.maxConsecutiveFailures) {
        return { ok: false, reason: 'suspended', challenge: { ...updated, closed: true } };
      }

      if (failures.count >= rules.maxFailuresPerAccount) {
        audit.record({ ...base, type: 'code_lockout', detail: `${failures.count} wrong codes` });
        return {
          ok: false,
          reason: 'locked',
          challenge: { ...updated, closed: true },
          retryAfterSeconds: secondsUntil(failures.resetAt.getTime()),
        };
      }
      if (closed) return { ok: false, reason: 'used_up', challenge: updated };
      return { ok: false, reason: 'wrong_code', challenge: updated, attemptsLeft: attemptsLeft(updated) };
    },
  };
}
