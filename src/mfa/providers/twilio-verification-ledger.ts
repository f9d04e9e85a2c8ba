import type { Clock } from '../../clock.js';
import type { Scope } from '../provider.js';

/**
 * Which account and scope started each pending Twilio verification. Twilio keeps one pending
 * verification per number and has no scope field, so the adapter (twilio-verify.ts) reads this to
 * decide whether a pending code may be cancelled (it is this account's own) or must be left alone
 * (another account's). Every instance must read the same ledger: a code started on one instance
 * and not known to another would look "of unknown origin" there, and the account would be told
 * to wait instead of getting its new code.
 */
export interface StartedVerification {
  /** Twilio's verification sid (VE...), the challenge's handle. */
  sid: string;
  to: string;
  scope: Scope;
  /** The account it was started for (undefined when the caller did not say). */
  account?: number;
  /** The verification API's key it was started for, in place of an account (SendCodeRequest.apiKey). */
  apiKey?: number;
  /** When it was started, in milliseconds since the epoch by the app's clock. */
  startedAt: number;
  /** That account had completed a code to the number before (SendCodeRequest.provenHolder). */
  provenHolder?: boolean;
}

export interface TwilioVerificationLedger {
  /** Remembers a verification (replacing any entry with its sid); it is forgotten by itself later. */
  record(verification: StartedVerification): Promise<void>;
  find(sid: string): Promise<StartedVerification | null>;
  /** The verifications remembered for a number, oldest first. */
  pendingFor(to: string): Promise<StartedVerification[]>;
  forget(sid: string): Promise<void>;
}

/**
 * How long a started verification is remembered. Twilio's default validity is 10 minutes; a
 * Service configured for longer is still safe, because a re-used verification is detected from
 * Twilio's own answer (twilio-verify.ts, startFresh).
 */
export const TWILIO_VERIFICATION_REMEMBER_MS = 30 * 60_000;

export interface TwilioVerificationLedgerOptions {
  rememberMs?: number;
}

/** The ledger in this process's memory: enough for one instance. */
export function createMemoryTwilioVerificationLedger(
  clock: Clock,
  options: TwilioVerificationLedgerOptions = {},
): TwilioVerificationLedger {
  const rememberMs = options.rememberMs ?? TWILIO_VERIFICATION_REMEMBER_MS;
  const entries = new Map<string, { verification: StartedVerification; forgetAt: number }>();

  function forgetOld() {
    const now = clock.now().getTime();
    for (const [sid, entry] of entries) if (entry.forgetAt <= now) entries.delete(sid);
  }

  return {
    async record(verification) {
      forgetOld();
      entries.delete(verification.sid); // a replaced entry moves to the end, as the newest
      entries.set(verification.sid, {
        verification: { ...verification },
        forgetAt: clock.now().getTime() + rememberMs,
      });
    },
    async find(sid) {
      forgetOld();
      const entry = entries.get(sid);
      return entry ? { ...entry.verification } : null;
    },
    async pendingFor(to) {
      forgetOld();
      return [...entries.values()]
        .map((entry) => entry.verification)
        .filter((verification) => verification.to === to)
        .sort((a, b) => a.startedAt - b.startedAt)
        .map((verification) => ({ ...verification }));
    },
    async forget(sid) {
      entries.delete(sid);
    },
  };
}
