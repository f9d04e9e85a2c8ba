import type { Clock } from '../clock.js';
import { describeWait } from '../errors.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { User } from '../users/store.js';

/**
 * The start of a phone number change on /account/security (issue 11). The new number must pass
 * the rules a sign-up's number passes (src/fraud/registration-guard.ts), and then proves itself
 * with a code sent to it (the `enrol` scope; src/mfa/routes.ts finishes the change). Each start
 * sends a paid code to a number nobody has proven yet, so an account may try only a few new
 * numbers a day, on top of the 3 codes a day each unproven number gets (src/auth/enrolment.ts).
 */
export const NEW_NUMBERS_PER_ACCOUNT_PER_DAY = 5;
const DAY_MS = 24 * 60 * 60_000;

export type PhoneChangeStart =
  | {
      ok: true;
      /** No code went out after all: the attempt does not count against the account. */
      release(): Promise<void>;
    }
  | { ok: false; status: number; message: string; retryAfterSeconds?: number };

export interface PhoneChange {
  /** Whether `phone` (E.164) may become the account's number; on `ok`, one of today's attempts is taken. */
  start(request: { user: User; phone: string; clientKey: string }): Promise<PhoneChangeStart>;
}

const attemptsKey = (userId: number) => `phone-change:account:${userId}`;

export function createPhoneChange(deps: {
  registrations: RegistrationGuard;
  limits: RateLimitStore;
  clock: Clock;
}): PhoneChange {
  const { limits, clock } = deps;
  return {
    async start({ user, phone, clientKey }) {
      if (phone === user.phone) {
        return { ok: false, status: 400, message: 'This is already your number. Enter a different one.' };
      }
      const admission = await deps.registrations.checkNumberForAccount({
        clientKey,
        phone,
        userId: user.id,
        username: user.username,
      });
      if (!admission.allowed) return { ok: false, status: 400, message: admission.message };

      const key = attemptsKey(user.id);
      const taken = await limits.increment(key, DAY_MS);
      // To the day it was taken in: a release that comes after that day ended (the code's send
      // failed late) must not give the next day a sixth number.
      const giveBack = () => limits.decrement(key, taken.window);
      if (taken.count > NEW_NUMBERS_PER_ACCOUNT_PER_DAY) {
        await giveBack();
        const retryAfterSeconds = Math.max(
          1,
          Math.ceil((taken.resetAt.getTime() - clock.now().getTime()) / 1000),
        );
        return {
          ok: false,
          status: 429,
          retryAfterSeconds,
          message: `You have tried ${NEW_NUMBERS_PER_ACCOUNT_PER_DAY} new numbers today, the most we allow. Try again in ${describeWait(retryAfterSeconds)}.`,
        };
      }
      let released = false;
      return {
        ok: true,
        async release() {
          if (released) return;
          released = true;
          await giveBack();
        },
      };
    },
  };
}
