import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { DAY_MS, HOUR_MS, type Violation } from './counters.js';
import type { SendingStore } from './store.js';

/**
 * The conversion breaker, per country. SMS pumping sends codes that nobody enters, to numbers
 * nobody verified; real traffic converts. When codes to never-verified numbers of a country
 * exceed, in a day, max(floor, 20% of the country's best day of verified codes in the last 14
 * days), or in an hour a sixth of that (at least 3), codes to never-verified numbers of that
 * country pause for an hour. Numbers that completed a code in the last 30 days never reach it.
 *
 * Three rules keep one account from pausing a country for everyone (an attack review found it
 * took 3 codes, or none): only codes that went out are counted; the breaker is asked only about a
 * send every other rule let through; and one network's share of a count is capped, so the excess
 * has to come from several.
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

/**
 * The most one network (an IPv4 address or an IPv6 /48) adds to a window's count: half the
 * threshold, at least 1. So a count passes its threshold only with sends from several networks
 * (three or more for any threshold above 1): one account, or one address, cannot pause a whole
 * country's new users.
 */
export const shareOfOneNetwork = (threshold: number) => Math.max(1, Math.floor(threshold / 2));

export interface BreakerCheck {
  /** Set when the country is paused, or this send would take its count past a threshold. */
  violation: Violation<'breaker'> | null;
  /** This send is the one that opened the pause (for the operator's log, once per pause). */
  opened: boolean;
}

export interface ConversionBreaker {
  /**
   * Whether a send to a never-verified number of `country`, from `network`, may go out. Only
   * reads the counts: they move when a code goes out (countSent), never for one that did not.
   */
  check(country: string, network: string): Promise<BreakerCheck>;
  /** A code went out to a never-verified number of `country`: counted, up to the network's share. */
  countSent(country: string, network: string): Promise<void>;
  /** When the pause on new numbers of this country ends, or null when there is none. */
  pausedUntil(country: string): Promise<Date | null>;
  thresholds(country: string): Promise<BreakerThresholds>;
}

const pauseKey = (country: string) => `fraud:breaker:pause:${country}`;
const WINDOWS = [
  { name: 'day', ms: DAY_MS, of: (limit: BreakerThresholds) => limit.perDay, says: 'a day' },
  { name: 'hour', ms: HOUR_MS, of: (limit: BreakerThresholds) => limit.perHour, says: 'an hour' },
] as const;
const countKey = (country: string, window: string) => `fraud:breaker:${window}:${country}`;
const shareKey = (country: string, window: string, network: string) =>
  `fraud:breaker:${window}:${country}:from:${network}`;

export function createConversionBreaker(deps: {
  limits: RateLimitStore;
  store: SendingStore;
  clock: Clock;
  minPerDay: number;
}): ConversionBreaker {
  const { limits, store, clock } = deps;

  async function thresholds(country: string) {
    const since = new Date(clock.now().getTime() - (HISTORY_DAYS - 1) * DAY_MS);
    // Numbers verified per day, not codes: one number verified again and again does not raise it.
    return breakerThresholds(
      await store.highestDailyCount(country, 'verified_number', since),
      deps.minPerDay,
    );
  }

  async function pausedUntil(country: string) {
    const pause = await limits.get(pauseKey(country));
    return pause ? pause.resetAt : null;
  }

  return {
    thresholds,
    pausedUntil,

    async check(country, network) {
      const until = await pausedUntil(country);
      if (until) {
        const detail = `new numbers paused until ${until.toISOString().slice(11, 16)} UTC`;
        return { violation: { rule: 'breaker', clearsAt: until, detail }, opened: false };
      }
      const limit = await thresholds(country);
      const over: string[] = [];
      for (const window of WINDOWS) {
        const [count, share] = await Promise.all([
          limits.get(countKey(country, window.name)),
          limits.get(shareKey(country, window.name, network)),
        ]);
        // A network that has given its share adds nothing more, so it cannot be what tips the count.
        if ((share?.count ?? 0) >= shareOfOneNetwork(window.of(limit))) continue;
        const after = (count?.count ?? 0) + 1;
        if (after > window.of(limit)) over.push(`${after} of ${window.of(limit)} in ${window.says}`);
      }
      // Read, not taken: sends racing at the threshold may all pass. The breaker is an alarm on a
      // country's traffic; the hard caps (per number, per address, the budget) are taken atomically.
      if (over.length === 0) return { violation: null, opened: false };
      // Only the first send over the line opens the pause; sends racing it see it open.
      const pause = await limits.increment(pauseKey(country), PAUSE_MS);
      return {
        violation: {
          rule: 'breaker',
          clearsAt: pause.resetAt,
          detail: `codes to new numbers ${over.join(', ')}; paused for an hour`,
        },
        opened: pause.count === 1,
      };
    },

    async countSent(country, network) {
      const limit = await thresholds(country);
      await Promise.all(
        WINDOWS.map(async (window) => {
          const share = await limits.increment(shareKey(country, window.name, network), window.ms);
          if (share.count <= shareOfOneNetwork(window.of(limit))) {
            await limits.increment(countKey(country, window.name), window.ms);
          }
        }),
      );
    },
  };
}
