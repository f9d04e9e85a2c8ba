import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import { clientNetworkKeysOf } from '../http/client-address.js';
import type { RateLimitStore, WindowCount } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import { maskPhone } from '../users/phone.js';
import type { FraudConfig } from './config.js';
import {
  HOUR_MS,
  NETWORK_LIMIT_FACTOR,
  createFraudNotes,
  handBackAfterFailure,
  secondsUntilClear,
  takeCounters,
  type CounterSpec,
  type Violation,
} from './counters.js';
import { checkDestination, countryName, type DestinationRule } from './destination.js';
import type { SendingStore } from './store.js';

/**
 * New accounts are where pumping starts: every account is a password away from a paid code. At
 * most `perAddressPerHour` new accounts per address (and five times that per IPv6 /48, whose
 * 65,536 /64s one party can rotate through), at most `accountsPerPhone` accounts per
 * number, and only numbers codes may be sent to (country list, no VoIP). Taken before the slow
 * password hash, so parallel sign-ups stop at the same limits; handed back when no account was made.
 */

export type RegistrationDecision =
  | {
      allowed: true;
      /** The attempt is over: `created` says whether an account now exists. */
      complete(created: boolean): Promise<void>;
    }
  | { allowed: false; rule: DestinationRule | 'accounts_per_phone'; message: string }
  | {
      allowed: false;
      rule: 'registrations_per_address' | 'registrations_per_network';
      retryAfterSeconds: number;
    };

export type NewNumberDecision =
  { allowed: true } | { allowed: false; rule: DestinationRule | 'accounts_per_phone'; message: string };

export interface RegistrationGuard {
  reserveRegistration(attempt: { clientKey: string; phone: string }): Promise<RegistrationDecision>;
  /**
   * A number an existing account wants to move to (/account/security): the same rules on the
   * number as a sign-up (countries, VoIP, accounts per proven number), but nothing taken from the
   * address's sign-up allowance, since no account is made. Asked when the change starts and again
   * when the code to the new number is entered (other accounts may have proven it meanwhile).
   */
  checkNumberForAccount(attempt: {
    clientKey: string;
    phone: string;
    userId: number;
    username: string;
  }): Promise<NewNumberDecision>;
}

export const ACCOUNTS_PER_PHONE_MESSAGE =
  'This phone number cannot be used for another account. Use a different number.';

/** Long enough to cover one registration's password hash; only sign-ups in progress are counted here. */
const IN_FLIGHT_MS = 5 * 60_000;

export function createRegistrationGuard(deps: {
  limits: RateLimitStore;
  clock: Clock;
  config: FraudConfig;
  audit: AuditLog;
  logger: Logger;
  store: SendingStore;
  /** Accounts that already have this number (the users table). */
  accountsWithPhone(phone: string): Promise<number>;
}): RegistrationGuard {
  const { limits, clock, config } = deps;
  const notes = createFraudNotes({ mode: config.mode, ...deps });
  const handBack = (release: () => Promise<void>, failure: unknown) =>
    handBackAfterFailure(release, failure, deps.logger, 'sign-up');

  return {
    async reserveRegistration({ clientKey, phone }) {
      const now = clock.now();
      const destination = checkDestination(phone, config);
      const { country } = destination.destination;
      const note = (violation: Violation) =>
        notes.refusal({
          what: 'registration',
          violation,
          country,
          clientKey,
          attempt: `new account with ${maskPhone(phone)} in ${country}`,
        });

      if (!destination.ok) {
        await note({ rule: destination.rule, clearsAt: now, detail: countryName(country) });
        if (notes.enforcing) return { allowed: false, rule: destination.rule, message: destination.message };
      }

      const { site } = clientNetworkKeysOf(clientKey);
      const perNetwork: CounterSpec<'registrations_per_network'>[] =
        site === null
          ? []
          : [
              {
                key: `fraud:register:network:${site}`,
                windowMs: HOUR_MS,
                limit: NETWORK_LIMIT_FACTOR * config.registration.perAddressPerHour,
                rule: 'registrations_per_network',
              },
            ];
      const taken = await takeCounters<'registrations_per_address' | 'registrations_per_network'>(limits, [
        {
          key: `fraud:register:address:${clientKey}`,
          windowMs: HOUR_MS,
          limit: config.registration.perAddressPerHour,
          rule: 'registrations_per_address',
        },
        ...perNetwork,
      ]);
      // Accounts already made, plus sign-ups racing this one: two at once cannot both be the third.
      const inFlightKey = `fraud:register:phone:${phone}`;
      let inFlight: WindowCount;
      try {
        inFlight = await limits.increment(inFlightKey, IN_FLIGHT_MS);
      } catch (error) {
        await handBack(taken.release, error);
        throw error;
      }
      let released = false;
      const release = async (created: boolean) => {
        if (released) return;
        released = true;
        await limits.decrement(inFlightKey, inFlight.window);
        if (!created) await taken.release();
      };
      // From here until the answer, a failure (the database, an audit write) hands back what was
      // taken: a sign-up that made nothing must not hold the address's allowance or the number's.
      try {
        const accounts = (await deps.accountsWithPhone(phone)) + inFlight.count;
        const phoneViolation: Violation | null =
          accounts > config.registration.accountsPerPhone
            ? {
                rule: 'accounts_per_phone',
                clearsAt: now,
                detail: `${accounts} of ${config.registration.accountsPerPhone}`,
              }
            : null;

        const violations = [...taken.violations, ...(phoneViolation ? [phoneViolation] : [])];
        if (violations.length > 0 && notes.enforcing) {
          await release(false);
          for (const violation of violations) await note(violation);
          // The number is the one thing the person can change, so that refusal is told first.
          if (phoneViolation)
            return { allowed: false, rule: 'accounts_per_phone', message: ACCOUNTS_PER_PHONE_MESSAGE };
          return {
            allowed: false,
            rule: taken.violations[0]!.rule,
            retryAfterSeconds: secondsUntilClear(taken.violations, now),
          };
        }
        for (const violation of violations) await note(violation);
        return { allowed: true, complete: release };
      } catch (error) {
        await handBack(() => release(false), error);
        throw error;
      }
    },

    async checkNumberForAccount({ clientKey, phone, userId, username }) {
      const now = clock.now();
      const destination = checkDestination(phone, config);
      const { country } = destination.destination;
      const note = (violation: Violation) =>
        notes.refusal({
          what: 'registration',
          violation,
          country,
          clientKey,
          userId,
          username,
          attempt: `phone change to ${maskPhone(phone)} in ${country}`,
        });
      if (!destination.ok) {
        await note({ rule: destination.rule, clearsAt: now, detail: countryName(country) });
        if (notes.enforcing) return { allowed: false, rule: destination.rule, message: destination.message };
      }
      // The account itself is not among them: it has another number until the change is done.
      const accounts = (await deps.accountsWithPhone(phone)) + 1;
      if (accounts > config.registration.accountsPerPhone) {
        await note({
          rule: 'accounts_per_phone',
          clearsAt: now,
          detail: `${accounts} of ${config.registration.accountsPerPhone}`,
        });
        if (notes.enforcing) {
          return { allowed: false, rule: 'accounts_per_phone', message: ACCOUNTS_PER_PHONE_MESSAGE };
        }
      }
      return { allowed: true };
    },
  };
}
