import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { SendGuard } from '../fraud/send-guard.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { verifyWindowMinutes } from '../mfa/provider.js';
import type { ProviderPool } from '../mfa/providers/pool.js';
import type { MfaRules } from '../mfa/service.js';
import { maskPhone } from '../users/phone.js';
import type { KeyConversion } from './key-conversion.js';
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
  | { kind: 'too_many_requests'; retryAfterSeconds: number }
  /** Another check of this verification is in flight: try again in a moment. */
  | { kind: 'in_progress' };

export interface VerificationCheckDeps {
  verifications: ApiVerificationStore;
  providers: ProviderPool;
  limits: RateLimitStore;
  sendGuard: SendGuard;
  audit: AuditLog;
  clock: Clock;
  rules: MfaRules;
  keyConversion: KeyConversion;
}

/**
 * How long one check may hold a verification: well past a provider call's deadline (seconds), so a
 * live check always ends first, and short enough that a hold left by an instance that stopped
 * mid-check is taken over soon (reserveAttempt takes a hold past this).
 */
const CHECK_HOLD_MS = 30_000;

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
   * verification run one at a time: else of two checks with the right code, the provider's answer
   * to the second (the console's burnt code, Twilio's 404 after an approval) would read as a wrong
   * or expired code, and the second could even close as expired a verification the first was
   * about to approve. A check that finds another in flight is answered at once (409, retry in a
   * moment): waiting for it cost a write every few milliseconds per waiting check, and a stuck
   * hold kept every checker waiting.
   */
  async function holdForCheck(
    verification: ApiVerification,
  ): Promise<
    | { held: true; attempts: number; until: number }
    | { held: false; now: ApiVerification }
    | { held: false; busy: true }
  > {
    const until = now() + CHECK_HOLD_MS;
    const attempts = await store.reserveAttempt(verification.id, rules.maxAttemptsPerCode, until);
    if (attempts !== null) return { held: true, attempts, until };
    const seen = await store.find(verification.keyId, verification.id);
    if (!seen || seen.status !== 'pending') return { held: false, now: seen ?? verification };
    if ((seen.checkHeldUntil ?? 0) > now()) return { held: false, busy: true };
    // Pending, nobody checking, and no attempt left: a check that stopped halfway used the last
    // one. It is used up.
    if (seen.attempts >= rules.maxAttemptsPerCode) {
      await store.close(seen.id, 'max_attempts');
      return { held: false, now: await current(seen) };
    }
    // The hold ended between the two reads: the other check is done, and a retry goes ahead.
    return { held: false, busy: true };
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
      if ('busy' in hold) return { kind: 'in_progress' };
      return hold.now.status === 'pending' && isExpired(hold.now)
        ? expire(caller, hold.now)
        : { kind: 'closed', verification: hold.now };
    }
    // Whatever happens from here (a store or provider failure, a bug), the hold does not outlive
    // this check: handed back with its attempt while the code was not compared, ended after.
    const progress = { holdEnded: false, compared: false };
    try {
      return await checkHeld(caller, verification, code, hold, progress);
    } finally {
      if (!progress.holdEnded) {
        await (
          progress.compared
            ? store.endCheck(verification.id, hold.until)
            : store.releaseAttempt(verification.id, hold.until)
        ).catch(() => undefined);
      }
    }
  }

  /** The rest of a check, once it holds the verification; `progress` says what it has done. */
  async function checkHeld(
    caller: ApiCaller,
    verification: ApiVerification,
    code: string,
    hold: { attempts: number; until: number },
    progress: { holdEnded: boolean; compared: boolean },
  ): Promise<CheckOutcome> {
    const failures = failuresKey(caller.key.id, verification.phone);
    // The wrong code is reserved before the comparison and handed back when the code is right (or
    // was never compared), so checks racing across this key's verifications to the number still
    // stop at the limit: a caller cannot guess without end by opening new verifications. Race:
    // the provider may answer after the window it was counted in has ended; the hand-back goes to
    // that window or nowhere, never to the next one (a free guess there per boundary crossed).
    const failuresNow = await limits.increment(failures, rules.failureWindowMs);
    const handBackFailure = () => limits.decrement(failures, failuresNow.window);
    const handBack = async () => {
      await handBackFailure();
      await store.releaseAttempt(verification.id, hold.until);
      progress.holdEnded = true;
    };
    if (failuresNow.count > rules.maxFailuresPerAccount) {
      await handBack();
      return { kind: 'too_many_requests', retryAfterSeconds: secondsUntil(failuresNow.resetAt) };
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
        maxAgeMinutes: verifyWindowMinutes(verification.createdAt, now()),
      });
    } catch (error) {
      await handBack();
      throw error;
    }
    progress.compared = true;

    /** Closes it (unless another request did first): a closed verification needs no hold ended. */
    const close = async (status: ClosedStatus) => {
      const closed = await store.close(verification.id, status);
      progress.holdEnded = true;
      return closed;
    };

    if (outcome === 'valid') {
      await handBackFailure();
      // Approving is one conditional write: a cancel, or a newer code that voided this one, wins
      // if it came first.
      if (!(await close('approved'))) {
        return { kind: 'closed', verification: await current(verification) };
      }
      await limits.reset(failures);
      await sendGuard.recordVerified({ to: verification.phone, userId: null });
      await deps.keyConversion.countApproved(verification.keyId);
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
      if (!(await close('max_attempts'))) {
        return { kind: 'closed', verification: await current(verification) };
      }
      return { kind: 'answered', verification: { ...closedAs(verification, 'max_attempts'), attempts } };
    }
    await store.endCheck(verification.id, hold.until);
    progress.holdEnded = true;
    return { kind: 'answered', verification: { ...verification, attempts } };
  }

  return { check: checkCode };
}
