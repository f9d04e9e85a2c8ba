import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { ConversionBreaker } from './breaker.js';
import type { FraudConfig, FraudGuardMode } from './config.js';
import {
  HOUR_MS,
  RULE_LABELS,
  VERIFIED_BUDGET_FACTOR,
  budgetKey,
  msUntilUtcMidnight,
  type FraudRule,
} from './counters.js';
import { countryName } from './destination.js';
import type { SendingStore } from './store.js';

/** The operator's "Sending" view on /admin: the last 24 hours, per country, and today's budget. */
export interface CountrySending {
  country: string;
  name: string;
  sent: number;
  verified: number;
  /** Verified codes per code sent; null when nothing was sent. */
  ratio: number | null;
  /** Sends and registrations refused (or, in record mode, flagged). */
  refused: number;
  /** Set while codes to never-verified numbers of this country are paused. */
  pausedUntil: Date | null;
}

export interface SendingSummary {
  mode: FraudGuardMode;
  countries: CountrySending[];
  refusals: { rule: FraudRule; label: string; count: number }[];
  pauses: { country: string; name: string; until: Date }[];
  /** `ceiling`: where codes stop for numbers that completed one too. */
  budget: { limit: number; ceiling: number; spent: number; isSpent: boolean; resetsAt: Date };
}

export interface SendingStats {
  summary(): Promise<SendingSummary>;
}

const WINDOW_HOURS = 24;

export function createSendingStats(deps: {
  store: SendingStore;
  breaker: ConversionBreaker;
  limits: RateLimitStore;
  clock: Clock;
  config: FraudConfig;
}): SendingStats {
  const { store, breaker, limits, clock, config } = deps;
  return {
    async summary() {
      const now = clock.now();
      // The current hour and the 23 before it.
      const counts = await store.countsSince(new Date(now.getTime() - (WINDOW_HOURS - 1) * HOUR_MS));
      const byCountry = new Map<string, CountrySending>();
      const byRule = new Map<FraudRule, number>();
      for (const { country, event, count } of counts) {
        // Numbers verified per day are the breaker's history, not a column of this view.
        if (event === 'verified_number') continue;
        const row = byCountry.get(country) ?? {
          country,
          name: countryName(country),
          sent: 0,
          verified: 0,
          ratio: null,
          refused: 0,
          pausedUntil: null,
        };
        byCountry.set(country, row);
        if (event === 'sent') row.sent += count;
        else if (event === 'verified') row.verified += count;
        else {
          row.refused += count;
          const rule = event.slice(event.indexOf(':') + 1) as FraudRule;
          byRule.set(rule, (byRule.get(rule) ?? 0) + count);
        }
      }
      const countries = [...byCountry.values()].sort(
        (a, b) => b.sent - a.sent || a.name.localeCompare(b.name),
      );
      for (const row of countries) {
        row.ratio = row.sent > 0 ? row.verified / row.sent : null;
        row.pausedUntil = await breaker.pausedUntil(row.country);
      }
      const spent = (await limits.get(budgetKey(now)))?.count ?? 0;
      return {
        mode: config.mode,
        countries,
        refusals: [...byRule].map(([rule, count]) => ({ rule, label: RULE_LABELS[rule], count })),
        pauses: countries.flatMap((row) =>
          row.pausedUntil ? [{ country: row.country, name: row.name, until: row.pausedUntil }] : [],
        ),
        budget: {
          limit: config.budgetPerDay,
          ceiling: VERIFIED_BUDGET_FACTOR * config.budgetPerDay,
          spent,
          isSpent: spent >= config.budgetPerDay,
          resetsAt: new Date(now.getTime() + msUntilUtcMidnight(now)),
        },
      };
    },
  };
}
