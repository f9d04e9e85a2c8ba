import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { DAY_MS, HOUR_MS, takeCounters, type Violation } from './counters.js';
import type { SendingStore } from './store.js';

/**
 * The conversion breaker, per country. SMS pumping sends codes that nobody enters, to numbers
 * nobody verified; real traffic converts. When codes to never-verified numbers of a country
 * exceed, in a day, max(floor, 20% of the country's best day of verified codes in the last 14
 * days), or in an hour a sixth of that (at least 3), codes to never-verified numbers of that
 * country pause for an hour. Numbers that completed a code before never reach the breaker.
 */

export const VERIFIED_SHARE = 0.2;
export const HISTORY_DAYS = 14;
export const MIN_PER_HOUR = 3;
export const PAUSE_MS = HOUR_MS;

export interface BreakerThresholds {
  perDay: number;
  perHour: number;
}

/** Counts are whole, so "more than 3.4" is "more than 3": the thresholds are rounded down. */
export function breakerThresholds(highestDailyVerified: number, minPerDay: number): BreakerThresholds {
  const perDay = Math.max(minPerDay, VERIFIED_SHARE * highestDailyVerified);
  return { perDay: Math.floor(perDay), perHour: Math.floor(Math.max(MIN_PER_HOUR, perDay / 6)) };
}

export interface BreakerReservation {
  /** Set when this send trips or meets the breaker. */
  violation: Violation<'breaker'> | null;
  /** This send is the one that opened the pause (for the operator's log, once per pause). */
  opened: boolean;
  release(): Promise<void>;
}

export interface ConversionBreaker {
  /** Takes a send to a never-verified number of `country` from the breaker's counts. */
  reserve(country: string): Promise<BreakerReservation>;
  /** When the pause on new numbers of this country ends, or null when there is none. */
  pausedUntil(country: string): Promise<Date | null>;
  thresholds(country: string): Promise<BreakerThresholds>;
}

const pauseKey = (country: string) => `fraud:breaker:pause:${country}`;
const NOTHING_TO_RELEASE = async () => undefined;

export function createConversionBreaker(deps: {
  limits: RateLimitStore;
  store: SendingStore;
  clock: Clock;
  minPerDay: number;
}): ConversionBreaker {
  const { limits, store, clock } = deps;

  async function thresholds(country: string) {
    const since = new Date(clock.now().getTime() - (HISTORY_DAYS - 1) * DAY_MS);
    return breakerThresholds(await store.highestDailyCount(country, 'verified', since), deps.minPerDay);
  }

  async function pausedUntil(country: string) {
    const pause = await limits.get(pauseKey(country));
    return pause ? pause.resetAt : null;
  }

  return {
    thresholds,
    pausedUntil,
    async reserve(country) {
      const until = await pausedUntil(country);
      if (until) {
        const detail = `new numbers paused until ${until.toISOString().slice(11, 16)} UTC`;
        return {
          violation: { rule: 'breaker', clearsAt: until, detail },
          opened: false,
          release: NOTHING_TO_RELEASE,
        };
      }
      const limit = await thresholds(country);
      const taken = await takeCounters(limits, [
        { key: `fraud:breaker:day:${country}`, windowMs: DAY_MS, limit: limit.perDay, rule: 'breaker' },
        { key: `fraud:breaker:hour:${country}`, windowMs: HOUR_MS, limit: limit.perHour, rule: 'breaker' },
      ]);
      if (taken.violations.length === 0) return { violation: null, opened: false, release: taken.release };
      // Only the first send over the line opens the pause; sends racing it see it open.
      const pause = await limits.increment(pauseKey(country), PAUSE_MS);
      const counts = taken.violations.map((violation) => violation.detail).join(', ');
      return {
        violation: {
          rule: 'breaker',
          clearsAt: pause.resetAt,
          detail: `codes to new numbers ${counts}; paused for an hour`,
        },
        opened: pause.count === 1,
        release: taken.release,
      };
    },
  };
}
