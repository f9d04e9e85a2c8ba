import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import { describeChannel, type Channel, type Scope } from '../mfa/provider.js';
import { maskPhone } from '../users/phone.js';
import { createConversionBreaker, type ConversionBreaker } from './breaker.js';
import type { FraudConfig } from './config.js';
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  budgetKey,
  createFraudNotes,
  msUntilUtcMidnight,
  secondsUntilClear,
  takeCounters,
  utcDay,
  type CounterSpec,
  type FraudRule,
  type Violation,
} from './counters.js';
import { checkDestination, countryName, destinationOf, type DestinationRule } from './destination.js';
import type { SendingStore } from './store.js';

/**
 * The toll-fraud and SMS-pumping guard on every code the site sends, whatever the account, scope
 * or channel (a voice call costs like an SMS). The MFA service asks it after the per-account
 * checks and before the provider call; what it counts is taken up front and handed back if the
 * code does not go out. In record mode (FRAUD_GUARD=record) it refuses nothing and notes what it
 * would have refused, so an operator can tune the limits on real traffic first.
 */

export type SendLimitRule = Exclude<
  FraudRule,
  DestinationRule | 'registrations_per_address' | 'accounts_per_phone'
>;

export interface SendAttempt {
  userId: number;
  username?: string;
  /** E.164; its country and type are read from the number itself, never taken from the caller. */
  to: string;
  clientKey: string;
  channel: Channel;
  scope: Scope;
}

export type SendDecision =
  | {
      allowed: true;
      country: string;
      /** The code did not go out: everything this send took is handed back. */
      release(): Promise<void>;
      /** The code went out: counted as sent for the operator's view. */
      confirm(): Promise<void>;
    }
  | { allowed: false; rule: DestinationRule; message: string }
  | { allowed: false; rule: SendLimitRule; retryAfterSeconds: number };

export interface SendGuard {
  reserveSend(attempt: SendAttempt): Promise<SendDecision>;
  /** A code to this number was entered right: it is a number that completes codes. */
  recordVerified(to: string): Promise<void>;
  readonly breaker: ConversionBreaker;
}

export interface SendGuardDeps {
  limits: RateLimitStore;
  clock: Clock;
  config: FraudConfig;
  audit: AuditLog;
  logger: Logger;
  store: SendingStore;
}

export function createSendGuard(deps: SendGuardDeps): SendGuard {
  const { limits, clock, config, audit, logger, store } = deps;
  const notes = createFraudNotes({ mode: config.mode, audit, logger, store });
  const breaker = createConversionBreaker({ limits, store, clock, minPerDay: config.breakerMinPerDay });
  const limitsOf = config.send;

  /** At most `countriesPerAddressPerDay` distinct destination countries per address. */
  async function takeAddressCountry(clientKey: string, country: string) {
    const seenKey = `fraud:send:address:country:${clientKey}:${country}`;
    const seen = await limits.increment(seenKey, DAY_MS);
    const releaseSeen = () => limits.decrement(seenKey);
    if (seen.count > 1) return { violations: [], release: releaseSeen };
    const countries = await takeCounters(limits, [
      {
        key: `fraud:send:address:countries:${clientKey}`,
        windowMs: DAY_MS,
        limit: limitsOf.countriesPerAddressPerDay,
        rule: 'address_countries' as const,
      },
    ]);
    return {
      violations: countries.violations,
      release: async () => {
        await releaseSeen();
        await countries.release();
      },
    };
  }

  /** The counters every send takes, the budget last. */
  function sendCounters(
    attempt: SendAttempt,
    now: Date,
    verifiedBefore: boolean,
  ): CounterSpec<SendLimitRule>[] {
    const { to, clientKey } = attempt;
    return [
      {
        key: `fraud:send:number:10min:${to}`,
        windowMs: 10 * MINUTE_MS,
        limit: limitsOf.perNumberPer10Minutes,
        rule: 'number_10min',
      },
      {
        key: `fraud:send:number:day:${to}`,
        windowMs: DAY_MS,
        limit: limitsOf.perNumberPerDay,
        rule: 'number_day',
      },
      {
        key: `fraud:send:address:hour:${clientKey}`,
        windowMs: HOUR_MS,
        limit: limitsOf.perAddressPerHour,
        rule: 'address_hour',
      },
      {
        key: `fraud:send:address:day:${clientKey}`,
        windowMs: DAY_MS,
        limit: limitsOf.perAddressPerDay,
        rule: 'address_day',
      },
      // Every code spends the budget; once it is spent, only numbers that completed a code before get one.
      {
        key: budgetKey(now),
        windowMs: msUntilUtcMidnight(now),
        limit: verifiedBefore ? Number.POSITIVE_INFINITY : config.budgetPerDay,
        rule: 'budget',
      },
    ];
  }

  async function noticePause(country: string, clientKey: string) {
    const { perDay, perHour } = await breaker.thresholds(country);
    logger.warn(
      { country, perDay, perHour, mode: config.mode },
      `conversion breaker: codes to never-verified numbers in ${country} paused for an hour`,
    );
    await audit.record({
      type: 'sending_paused',
      ip: clientKey,
      detail: `${countryName(country)} (${country}): codes to never-verified numbers paused for an hour (limits ${perDay} a day, ${perHour} an hour)${config.mode === 'record' ? '; record mode: not enforced' : ''}`,
    });
  }

  /** Said once a day, at error level: from now on only numbers that completed a code get codes. */
  async function noticeBudgetSpent(now: Date, spent: number) {
    if (spent < config.budgetPerDay) return;
    const once = await limits.increment(`fraud:budget:noticed:${utcDay(now)}`, msUntilUtcMidnight(now));
    if (once.count !== 1) return;
    logger.error(
      { budget: config.budgetPerDay, mode: config.mode },
      'daily send budget (SEND_BUDGET_PER_DAY) is spent: until midnight UTC only numbers that completed a code before get codes',
    );
    await audit.record({
      type: 'send_budget_spent',
      detail: `${spent} codes today (budget ${config.budgetPerDay})`,
    });
  }

  return {
    breaker,

    async reserveSend(attempt) {
      const { to, clientKey } = attempt;
      const now = clock.now();
      const destination = checkDestination(to, config);
      const { country } = destination.destination;
      const note = (violation: Violation) =>
        notes.refusal({
          what: 'send',
          violation,
          country,
          clientKey,
          userId: attempt.userId,
          username: attempt.username,
          attempt: `${attempt.scope} code by ${describeChannel(attempt.channel)} to ${maskPhone(to)} in ${country}`,
        });

      if (!destination.ok) {
        await note({ rule: destination.rule, clearsAt: now, detail: countryName(country) });
        if (notes.enforcing) return { allowed: false, rule: destination.rule, message: destination.message };
      }

      const verifiedBefore = await store.isVerifiedNumber(to);
      const counters = await takeCounters(limits, sendCounters(attempt, now, verifiedBefore));
      const countries = await takeAddressCountry(clientKey, country);
      const breakerTaken = verifiedBefore ? null : await breaker.reserve(country);

      if (breakerTaken?.opened) await noticePause(country, clientKey);

      const violations: Violation<SendLimitRule>[] = [
        ...counters.violations,
        ...countries.violations,
        ...(breakerTaken?.violation ? [breakerTaken.violation] : []),
      ];
      const release = async () => {
        await Promise.all([counters.release(), countries.release(), breakerTaken?.release()]);
      };
      for (const violation of violations) await note(violation);
      if (violations.length > 0 && notes.enforcing) {
        await release();
        return {
          allowed: false,
          rule: violations[0]!.rule,
          retryAfterSeconds: secondsUntilClear(violations, now),
        };
      }
      // Only a send that goes ahead spends the budget for good.
      await noticeBudgetSpent(now, counters.counts.at(-1)!.count);
      return { allowed: true, country, release, confirm: () => store.countEvent(country, 'sent') };
    },

    async recordVerified(to) {
      await store.markVerified(to);
      await store.countEvent(destinationOf(to).country, 'verified');
    },
  };
}
