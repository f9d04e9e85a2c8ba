import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { SendGuard } from '../fraud/send-guard.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { ProviderPool } from '../mfa/providers/pool.js';
import type { MfaRules } from '../mfa/service.js';
import { maskPhone } from '../users/phone.js';
import {
  apiUsername,
  cooldownKey,
  describeVerification,
  failuresKey,
  type ApiCaller,
} from './verification-keys.js';
import type { ApiVerification, ApiVerificationStore, ClosedStatus } from './verification-store.js';

/**
 * A check of a code against one API verification: the code's attempts, the key's wrong codes to
 * the number, one check at a time, approved once. The same order of guards as the site's own codes
 * (src/mfa/service.ts, verifyCode): closed or expired first, then the limits taken before the
 * provider is asked, handed back when the code is right or was never compared.
 */

export type CheckOutcome =
  /** The check was made: approved, still pending after a wrong code, expired or used up. */
  | { kind: 'answered'; verification: ApiVerification }
  | { kind: 'not_found' }
  /** No longer pending when this check came (or another request closed it meanwhile). */
  | { kind: 'closed'; verification: ApiVerification }
  /** Too many wrong codes for this key and number in the window. */
  | { kind: 'too_many_requests'; retryAfterSeconds: number };

export interface VerificationCheckDeps {
  verifications: ApiVerificationStore;
  providers: ProviderPool;
  limits: RateLimitStore;
  sendGuard: SendGuard;
  audit: AuditLog;
  clock: Clock;
  rules: MfaRules;
}

/**
 * How long one check may hold a verification: well past a provider call's deadline (seconds), so a
 * live check always ends first, and short enough that one whose instance stopped frees it soon.
 */
const CHECK_HOLD_MS = 30_000;
/** How often a check waiting for another check of the same verification looks again. */
const CHECK_WAIT_POLL_MS = 50;

export function createVerificationCheck(deps: VerificationCheckDeps) {
  const { verifications: store, providers, limits, sendGuard, audit, clock, rules } = deps;
  const now = () => clock.now().getTime();
  const secondsUntil = (at: Date) => Math.max(1, Math.ceil((at.getTime() - now()) / 1000));
  const isExpired = (verification: ApiVerification) => now() >= verification.expiresAt;
  const closedAs = (verification: ApiVerification, status: ClosedStatus): ApiVerification => ({
    ...verification,
    status,
    closedAt: now(),
  });

  const recordChecked = (caller: ApiCaller, verification: ApiVerification, outcome: string) =>
    audit.record({
      type: 'api_code_checked',
      username: apiUsername(caller.key),
      ip: caller.ip,
      detail: `${outcome}; ${describeVerification(verification)}`,
    });

  /** The verification as it is now, for an answer about one this request could not change. */
  const current = async (verification: ApiVerification) =>
    (await store.find(verification.keyId, verification.id)) ?? verification;

  /** Closes a pending verification found past its expiry: the first to see it is told 'expired', later ones 409. */
  async function expire(caller: ApiCaller, verification: ApiVerification): Promise<CheckOutcome> {
    if (!(await store.close(verification.id, 'expired'))) {
      return { kind: 'closed', verification: await current(verification) };
    }
    await recordChecked(caller, verification, 'expired');
    return { kind: 'answered', verification: closedAs(verification, 'expired') };
  }

  /**
   * Takes an attempt and with it the verification's one check in flight. Checks of one
   * verification run one at a time, and one that finds another in flight waits for it: else of
   * two checks with the right code, the provider's answer to the second (the console's burnt code,
   * Twilio's 404 after an approval) would read as a wrong or expired code, and the second could
   * even close as expired a verification the first was about to approve. Waiting, the second
   * finds it approved and is told so (409).
   */
  async function holdForCheck(
    verification: ApiVerification,
  ): Promise<{ held: true; attempts: number; until: number } | { held: false; now: ApiVerification }> {
    const waitsLeft = Math.ceil(CHECK_HOLD_MS / CHECK_WAIT_POLL_MS);
    for (let waits = 0; ; waits += 1) {
      const until = now() + CHECK_HOLD_MS;
      const attempts = await store.reserveAttempt(verification.id, rules.maxAttemptsPerCode, until);
      if (attempts !== null) return { held: true, attempts, until };
      const seen = await store.find(verification.keyId, verification.id);
      if (!seen || seen.status !== 'pending') return { held: false, now: seen ?? verification };
      // Pending with no attempt left and nobody checking: a check that stopped halfway used the
      // last one. It is used up.
      if (seen.attempts >= rules.maxAttemptsPerCode && (seen.checkHeldUntil ?? 0) <= now()) {
        await store.close(seen.id, 'max_attempts');
        return { held: false, now: await current(seen) };
      }
      if (waits >= waitsLeft) {
        throw new Error('a check of this verification has been holding it for too long');
      }
      await sleep(CHECK_WAIT_POLL_MS);
    }
  }

  /** Checks `code` against `verification`, a verification of the caller's key. */
  async function checkCode(
    caller: ApiCaller,
    verification: ApiVerification,
    code: string,
  ): Promise<CheckOutcome> {
    if (verification.status !== 'pending') return { kind: 'closed', verification };
    if (isExpired(verification)) return expire(caller, verification);
    const failures = failuresKey(caller.key.id, verification.phone);
    const tooMany = (resetAt: Date) => ({
      kind: 'too_many_requests' as const,
      retryAfterSeconds: secondsUntil(resetAt),
    });
    // Looked at before anything is taken: a caller at the limit costs no write.
    const seen = await limits.get(failures);
    if (seen && seen.count >= rules.maxFailuresPerAccount) return tooMany(seen.resetAt);

    const hold = await holdForCheck(verification);
    if (!hold.held) {
      return hold.now.status === 'pending' && isExpired(hold.now)
        ? expire(caller, hold.now)
        : { kind: 'closed', verification: hold.now };
    }
    // The wrong code is reserved before the comparison and handed back when the code is right (or
    // was never compared), so checks racing across this key's verifications to the number still
    // stop at the limit: a caller cannot guess without end by opening new verifications.
    const failuresNow = await limits.increment(failures, rules.failureWindowMs);
    const handBack = async () => {
      await limits.decrement(failures);
      await store.releaseAttempt(verification.id, hold.until);
    };
    if (failuresNow.count > rules.maxFailuresPerAccount) {
      await handBack();
      return tooMany(failuresNow.resetAt);
    }

    // Only the provider that sent the code, with its handle and the `api` scope: a code the site
    // sent for a login, or another key's, can never satisfy it.
    let outcome: Awaited<ReturnType<ProviderPool['verify']>>;
    try {
      outcome = await providers.verify(verification.provider, {
        to: verification.phone,
        scope: 'api',
        code,
        handle: verification.handle,
        maxAgeMinutes: Math.max(1, Math.ceil((now() - verification.createdAt) / 60_000)),
      });
    } catch (error) {
      await handBack();
      throw error;
    }

    if (outcome === 'valid') {
      await limits.decrement(failures);
      // Approving is one conditional write: a cancel, or a newer code that voided this one, wins
      // if it came first.
      if (!(await store.close(verification.id, 'approved'))) {
        return { kind: 'closed', verification: await current(verification) };
      }
      await limits.reset(failures);
      await sendGuard.recordVerified({ to: verification.phone, userId: null });
      // The code did its job: the next one to this number under this label may go at once.
      await limits.reset(cooldownKey(verification.keyId, verification.label, verification.phone));
      await recordChecked(caller, verification, 'approved');
      return { kind: 'answered', verification: closedAs(verification, 'approved') };
    }
    if (outcome === 'expired') {
      await handBack();
      return expire(caller, verification);
    }

    const attempts = hold.attempts;
    const usedUp = outcome === 'locked' || attempts >= rules.maxAttemptsPerCode;
    await recordChecked(caller, verification, `wrong code, attempt ${attempts}`);
    if (failuresNow.count === rules.maxFailuresPerAccount) {
      // Said once, when the limit is reached: from now on this key's checks of the number wait.
      await audit.record({
        type: 'code_lockout',
        username: apiUsername(caller.key),
        ip: caller.ip,
        detail: `${failuresNow.count} wrong codes for ${maskPhone(verification.phone)}: its checks wait`,
      });
    }
    if (usedUp) {
      if (!(await store.close(verification.id, 'max_attempts'))) {
        return { kind: 'closed', verification: await current(verification) };
      }
      return { kind: 'answered', verification: { ...closedAs(verification, 'max_attempts'), attempts } };
    }
    await store.endCheck(verification.id, hold.until);
    return { kind: 'answered', verification: { ...verification, attempts } };
  }

  return { check: checkCode };
}
