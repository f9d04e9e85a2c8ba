import type { Request } from 'express';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import { describeWait } from '../errors.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { startNewSession } from '../http/session.js';
import { describeSendRefusal, sendRefusalStatus, type CodeDelivery } from '../mfa/delivery.js';
import { ProviderError, type Channel } from '../mfa/provider.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { User, UserStore } from '../users/store.js';

/**
 * A new account proves its number before it can log in (issue 11): registration, and any later
 * password of an account that has not done so, lead to a code in the `enrol` scope sent to that
 * number. Entering it signs the person in (they have just given the password and shown they hold
 * the phone); until then the account is "unproven", and housekeeping removes it after a day.
 */

/** Codes an unproven number may receive in a day: a stranger's number typed in cannot be pumped. */
export const ENROL_CODES_PER_NUMBER = 3;
const DAY_MS = 24 * 60 * 60_000;
/** An account that never proved its number is removed this long after it was made. */
export const UNPROVEN_ACCOUNT_LIFETIME_MS = DAY_MS;

export type EnrolSendOutcome =
  { ok: true } | { ok: false; message: string; status: number; retryAfterSeconds?: number };

export interface Enrolment {
  /** Starts the enrolment in a new session (the password was just checked or set). */
  begin(req: Request, user: User): Promise<void>;
  /** Sends an `enrol` code to the account's number, within ENROL_CODES_PER_NUMBER a day. */
  sendCode(req: Request, user: User, channel: Channel): Promise<EnrolSendOutcome>;
}

/**
 * Per number, whatever the account: one number typed into many sign-ups still gets three codes a
 * day from all of them together. Except for an account an admin moved to a new number (it has
 * logged in before, and its number is not proven yet): its codes count on their own, or a stranger
 * who learnt the number could use up its three a day with sign-ups naming it, every day, and the
 * owner could never prove it.
 */
const enrolCodesKey = (user: User) =>
  user.lastLoginAt !== null && user.phoneVerifiedAt === null
    ? `enrol:codes:${user.phone}:account:${user.id}`
    : `enrol:codes:${user.phone}`;

export function createEnrolment(deps: {
  limits: RateLimitStore;
  delivery: CodeDelivery;
  audit: AuditLog;
  clock: Clock;
}): Enrolment {
  const { limits, delivery, clock } = deps;
  return {
    async begin(req, user) {
      await startNewSession(req);
      req.session.pendingEnrolment = { userId: user.id, startedAt: clock.now().getTime() };
    },
    async sendCode(req, user, channel) {
      const key = enrolCodesKey(user);
      const taken = await limits.increment(key, DAY_MS);
      // Handed back to the key and the day it was taken in: a send that fails after that day ended
      // must not give the number's next day a fourth code.
      const giveBack = () => limits.decrement(key, taken.window);
      if (taken.count > ENROL_CODES_PER_NUMBER) {
        await giveBack();
        const retryAfterSeconds = Math.max(
          1,
          Math.ceil((taken.resetAt.getTime() - clock.now().getTime()) / 1000),
        );
        await deps.audit.record({
          type: 'code_send_refused',
          userId: user.id,
          username: user.username,
          ip: req.ip,
          detail: `enrol code: ${ENROL_CODES_PER_NUMBER} a day to an unproven number`,
        });
        return {
          ok: false,
          status: 429,
          retryAfterSeconds,
          message: `No more codes can be sent to this number today. Check the number below, or try again in ${describeWait(retryAfterSeconds)}.`,
        };
      }
      let outcome: Awaited<ReturnType<CodeDelivery['sendCode']>>;
      try {
        outcome = await delivery.sendCode(req, { user, scope: 'enrol', channel });
      } catch (error) {
        // A provider that surely sent nothing (refused, unreachable) costs the number nothing,
        // or an outage would use up its day; one that may have sent keeps the count.
        if (error instanceof ProviderError && error.delivered === 'no') {
          await giveBack();
        }
        throw error;
      }
      if (outcome.ok) return { ok: true };
      // Nothing new went out, so the number keeps its allowance. Within the cooldown the code
      // already on its way is the one to wait for (delivery adopted it).
      await giveBack();
      if (outcome.reason === 'cooldown' && outcome.pending) return { ok: true };
      return {
        ok: false,
        status: sendRefusalStatus(outcome),
        message: describeSendRefusal(outcome),
        ...('retryAfterSeconds' in outcome ? { retryAfterSeconds: outcome.retryAfterSeconds } : {}),
      };
    },
  };
}

const UNPROVEN_BATCH_SIZE = 100;

/** Housekeeping: accounts that never proved their number are removed a day after they were made. */
export function createUnprovenAccountsTask(deps: { users: UserStore; clock: Clock }): HousekeepingTask {
  return {
    name: 'unproven accounts',
    batchSize: UNPROVEN_BATCH_SIZE,
    runBatch: () =>
      deps.users.deleteUnprovenMadeBefore(
        new Date(deps.clock.now().getTime() - UNPROVEN_ACCOUNT_LIFETIME_MS),
        UNPROVEN_BATCH_SIZE,
      ),
  };
}

/** Whether the password step of this account leads to its enrolment instead of a login code. */
export function needsEnrolment(user: User): boolean {
  return user.phoneVerifiedAt === null;
}
