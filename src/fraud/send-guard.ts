import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import { clientNetworkKeysOf } from '../http/client-address.js';
import { describeChannel, isStepUpScope, type Channel, type Scope } from '../mfa/provider.js';
import { maskPhone } from '../users/phone.js';
import { createConversionBreaker, type ConversionBreaker } from './breaker.js';
import type { FraudConfig } from './config.js';
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  NETWORK_LIMIT_FACTOR,
  VERIFIED_BUDGET_FACTOR,
  budgetKey,
  createFraudNotes,
  handBackAfterFailure,
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
  DestinationRule | 'registrations_per_address' | 'registrations_per_network' | 'accounts_per_phone'
>;

/**
 * A number that completed a code this recently still gets codes when the budget is spent or its
 * country is paused. Not for ever: numbers change hands, and one verification must not buy an
 * exemption for good, for whoever asks. The account that completed a code to the number itself is
 * exempt however long ago that was (see `exempt` in reserveSend): otherwise a handful of strangers'
 * sign-ups pausing a country would refuse its login codes to everyone who had not logged in for a
 * month. It still stops at the per-number caps and the budget's hard ceiling.
 */
export const VERIFIED_EXEMPTION_MS = 30 * DAY_MS;

export interface SendAttempt {
  /** The account the code is for; null for the verification API, whose caller is a key, not an account. */
  userId: number | null;
  /** Who asked, for the audit log: the account's name, or `api:<key name>`. */
  username?: string;
  /** E.164; its country and type are read from the number itself, never taken from the caller. */
  to: string;
  clientKey: string;
  channel: Channel;
  scope: Scope;
  /**
   * Whether the per-address limits (and the countries per address) count this send; true unless
   * said. Not the verification API's: its caller's servers ask for the codes of all its users from
   * a few addresses, and the key's own hourly limit (API_KEY_SENDS_PER_HOUR) counts them instead.
   * The per-number limits, the budget and the breaker (by network) count every send.
   */
  countsPerAddress?: boolean;
}

export type SendDecision =
  | {
      allowed: true;
      country: string;
      /**
       * This account has completed a code to this number before: it has shown it holds the phone.
       * Passed to the provider (Twilio may then cancel a code left pending by an account that has not).
       */
      provenHolder: boolean;
      /** The code did not go out: everything this send took is handed back. */
      release(): Promise<void>;
      /** The code went out, or may have: counted as sent, for the operator's view and the breaker. */
      confirm(): Promise<void>;
    }
  | { allowed: false; rule: DestinationRule; message: string }
  | { allowed: false; rule: SendLimitRule; retryAfterSeconds: number };

export interface SendGuard {
  reserveSend(attempt: SendAttempt): Promise<SendDecision>;
  /**
   * A code to this number was entered right, by this account: a number, and a holder, that
   * complete codes. With no account (the verification API) only the number is recorded.
   */
  recordVerified(verified: { to: string; userId: number | null }): Promise<void>;
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

  const handBack = (release: () => Promise<void>, failure: unknown) =>
    handBackAfterFailure(release, failure, logger, 'send');

  /**
   * At most `countriesPerAddressPerDay` distinct destination countries per address and UTC day,
   * as one set of countries per address whose key names the day and whose window ends at its
   * midnight (windows of their own drifted apart and once let a fourth country in).
   *
   * Every send holds its country, and the store checks and holds in one atomic step, so every send
   * to one country, on any instance, gets the same answer. With two steps (a count of the sends
   * holding the country, the first of which then took a place among the countries), a send that
   * joined a country while its first send's place was still being counted went out even when that
   * place was over the limit and the first was refused: one more country per pair of sends.
   * A country leaves the set only with its last holder, so a first send refused or failing after
   * another joined it does not take the place away while the other's code goes out.
   *
   * Record mode: a country beyond the limit is noted and its code goes out, but it does not join
   * the set, which keeps holding only what enforcing would have let through; each later send to it
   * is noted too, as enforcing would have refused each. (The count it replaces counted the country
   * past the limit and noted only its first send.)
   */
  async function holdAddressCountry(clientKey: string, country: string, now: Date) {
    // Not the old counter's key (`countries:`): during a rolling deploy an old instance's INCR and a
    // new instance's hash would meet on one key and fail each other's sends.
    const key = `fraud:send:address:held-countries:${utcDay(now)}:${clientKey}`;
    const limit = limitsOf.countriesPerAddressPerDay;
    const hold = await limits.holdMember(key, country, limit, msUntilUtcMidnight(now));
    let released = !hold.held;
    const release = async () => {
      // Once only: a second release would take away a hold another send of the country has.
      if (released) return;
      released = true;
      await limits.releaseMember(key, country, hold.window);
    };
    const violations: Violation<'address_countries'>[] = hold.held
      ? []
      : [{ rule: 'address_countries', clearsAt: hold.resetAt, detail: `${hold.members + 1} of ${limit}` }];
    return { violations, release };
  }

  /**
   * The per-number counters. A stranger who registers accounts with someone's number must not use
   * up its owner's codes (an attack review locked an owner out for a day that way), so an account
   * that has completed a code to the number counts against an allowance of its own. Everyone else
   * shares the number's common allowance, which the holder's codes also count towards without
   * being refused by it: at most (each holder's own + the common) codes reach one phone, and
   * holders are accounts that have shown they hold it.
   */
  function numberCounters(attempt: SendAttempt, provenHolder: boolean): CounterSpec<SendLimitRule>[] {
    const { to, userId } = attempt;
    const windows = [
      {
        name: '10min',
        windowMs: 10 * MINUTE_MS,
        limit: limitsOf.perNumberPer10Minutes,
        rule: 'number_10min',
      },
      { name: 'day', windowMs: DAY_MS, limit: limitsOf.perNumberPerDay, rule: 'number_day' },
    ] as const;
    return windows.flatMap(({ name, windowMs, limit, rule }) => {
      const common = `fraud:send:number:${name}:${to}`;
      if (!provenHolder) return [{ key: common, windowMs, limit, rule }];
      // A holder's step-up codes (admin, settings, reset) have an allowance apart from its login
      // codes: a stolen session or a reset link asking again and again must not use up the codes
      // its owner needs to log in.
      const own = `${common}:acct:${userId}${isStepUpScope(attempt.scope) ? ':step-up' : ''}`;
      return [
        { key: own, windowMs, limit, rule },
        { key: common, windowMs, limit: Number.POSITIVE_INFINITY, rule },
      ];
    });
  }

  /** The counters every send takes, the budget last. */
  function sendCounters(
    attempt: SendAttempt,
    now: Date,
    facts: { verifiedRecently: boolean; provenHolder: boolean; network: string | null },
  ): CounterSpec<SendLimitRule>[] {
    return [
      ...numberCounters(attempt, facts.provenHolder),
      ...(attempt.countsPerAddress === false ? [] : addressCounters(attempt.clientKey, facts.network)),
      // Every code spends the budget; once it is spent, only numbers that completed a code
      // recently get one, and they too stop at the hard ceiling.
      {
        key: budgetKey(now),
        windowMs: msUntilUtcMidnight(now),
        limit: facts.verifiedRecently ? VERIFIED_BUDGET_FACTOR * config.budgetPerDay : config.budgetPerDay,
        rule: 'budget',
      },
    ];
  }

  /** The client's address (and, for IPv6, its /48), per hour and per day. */
  function addressCounters(clientKey: string, network: string | null): CounterSpec<SendLimitRule>[] {
    return [
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
      // An IPv6 client can rotate through the 65,536 /64s of its /48: the /48 has a wider limit.
      ...(network === null
        ? []
        : [
            {
              key: `fraud:send:network:hour:${network}`,
              windowMs: HOUR_MS,
              limit: NETWORK_LIMIT_FACTOR * limitsOf.perAddressPerHour,
              rule: 'network_hour' as const,
            },
            {
              key: `fraud:send:network:day:${network}`,
              windowMs: DAY_MS,
              limit: NETWORK_LIMIT_FACTOR * limitsOf.perAddressPerDay,
              rule: 'network_day' as const,
            },
          ]),
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
    const onceKey = `fraud:budget:noticed:${utcDay(now)}`;
    const once = await limits.increment(onceKey, msUntilUtcMidnight(now));
    if (once.count !== 1) return;
    logger.error(
      { budget: config.budgetPerDay, mode: config.mode },
      `daily send budget (SEND_BUDGET_PER_DAY) is spent: until midnight UTC only numbers that completed a code in the last 30 days get codes, up to ${VERIFIED_BUDGET_FACTOR * config.budgetPerDay}`,
    );
    try {
      await audit.record({
        type: 'send_budget_spent',
        detail: `${spent} codes today (budget ${config.budgetPerDay})`,
      });
    } catch (error) {
      // Not written: the next send past the budget says it again, rather than no one that day.
      await limits.decrement(onceKey, once.window).catch(() => null);
      throw error;
    }
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

      const { userId } = attempt;
      const [verifiedLately, provenHolder] = await Promise.all([
        store.isVerifiedNumber(to, new Date(now.getTime() - VERIFIED_EXEMPTION_MS)),
        userId === null ? false : store.hasAccountVerified(to, userId),
      ]);
      // Past the budget and the breaker: a number that completed a code lately, or an account's
      // own number that it completed a code to (see VERIFIED_EXEMPTION_MS).
      const verifiedRecently = verifiedLately || provenHolder;
      const networks = clientNetworkKeysOf(clientKey);
      const counters = await takeCounters(
        limits,
        sendCounters(attempt, now, { verifiedRecently, provenHolder, network: networks.site }),
      );
      let countries: Awaited<ReturnType<typeof holdAddressCountry>>;
      try {
        countries =
          attempt.countsPerAddress === false
            ? { violations: [], release: async () => undefined }
            : await holdAddressCountry(clientKey, country, now);
      } catch (error) {
        await handBack(counters.release, error);
        throw error;
      }
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await Promise.all([counters.release(), countries.release()]);
      };

      // From here until the answer, a failure (the breaker's store, an audit write) hands back
      // what was taken: a send that never went out must not hold the number's counts or the
      // address's country until their windows end (for everyone behind that address).
      try {
        const violations: Violation<SendLimitRule>[] = [...counters.violations, ...countries.violations];
        // The breaker last, and only about a send every other rule let through (in record mode
        // every send goes out, so each is asked): a send refused anyway must not pause a country.
        // A /48 is one network to it, as an IPv4 address is.
        const breakerNetwork = networks.site ?? networks.client;
        const asksBreaker = !verifiedRecently && (violations.length === 0 || !notes.enforcing);
        const breakerCheck = asksBreaker ? await breaker.check(country, breakerNetwork) : null;
        if (breakerCheck?.opened) await noticePause(country, clientKey);
        if (breakerCheck?.violation) violations.push(breakerCheck.violation);

        if (violations.length > 0 && notes.enforcing) {
          // Handed back before the refusal is noted (audit writes can be slow): meanwhile the
          // places would turn away other sends from this address.
          await release();
          for (const violation of violations) await note(violation);
          return {
            allowed: false,
            rule: violations[0]!.rule,
            retryAfterSeconds: secondsUntilClear(violations, now),
          };
        }
        for (const violation of violations) await note(violation);
        // Only a send that goes ahead spends the budget for good.
        await noticeBudgetSpent(now, counters.counts.at(-1)!.count);
        return {
          allowed: true,
          country,
          provenHolder,
          release,
          async confirm() {
            await store.countEvent(country, 'sent');
            // The breaker counts codes that went out, never reservations handed back.
            if (!verifiedRecently) await breaker.countSent(country, breakerNetwork);
          },
        };
      } catch (error) {
        await handBack(release, error);
        throw error;
      }
    },

    async recordVerified({ to, userId }) {
      const { firstToday } = await store.markVerified(to, userId);
      const { country } = destinationOf(to);
      await store.countEvent(country, 'verified');
      if (firstToday) await store.countEvent(country, 'verified_number');
    },
  };
}
