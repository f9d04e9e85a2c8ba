import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import { HOUR_MS, msUntilUtcMidnight, utcDay } from '../fraud/counters.js';
import type { SendingStore } from '../fraud/store.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { ApiKey } from './keys.js';
import { apiUsername } from './verification-keys.js';

/**
 * Two limits on what one API key may make the site pay for (SMS pumping through a key). The
 * country breaker (src/fraud/breaker.ts) counts one network per address, and a key's sends all
 * come from its owner's few servers, so a key alone never trips it; and at its hourly limit a key
 * could spend the site's whole daily budget, after which the site's own codes to new numbers
 * (sign-ups) are refused.
 *
 * - Per key: once the key has had at least NEW_NUMBER_FLOOR codes sent to numbers nobody ever
 *   verified in about an hour, and fewer than APPROVED_SHARE of its codes in that time were
 *   approved, its codes to never-verified numbers pause for an hour. Numbers that completed a code
 *   still get theirs: a real caller's returning users are not stopped.
 * - Across keys: API codes spend at most half of SEND_BUDGET_PER_DAY; the other half stays for
 *   the site's own codes.
 *
 * "About an hour" is this clock hour and the one before, each a counter of its own: two counters
 * with windows of their own (started at their first count) would drift apart and the share read
 * between them would mean nothing.
 */

export const NEW_NUMBER_FLOOR = 20;
export const APPROVED_SHARE = 0.2;
export const KEY_PAUSE_MS = HOUR_MS;
/** The share of SEND_BUDGET_PER_DAY the verification API may spend. */
export const API_BUDGET_SHARE = 0.5;

type Counted = 'sent' | 'new' | 'approved';

const hourOf = (now: Date) => Math.floor(now.getTime() / HOUR_MS);
const countKey = (keyId: number, counted: Counted, hour: number) =>
  `api:conversion:${keyId}:${counted}:${hour}`;
const pauseKey = (keyId: number) => `api:conversion:${keyId}:paused`;
const apiBudgetKey = (now: Date) => `api:budget:${utcDay(now)}`;

export type ConversionDecision =
  | {
      allowed: true;
      /** No one ever completed a code to this number. */
      newNumber: boolean;
    }
  | { allowed: false; retryAfterSeconds: number; detail: string };

export interface KeyConversion {
  /** Whether this key may have a code sent to `to` now; opens the key's pause when it tips it. */
  check(key: ApiKey, to: string): Promise<ConversionDecision>;
  /** A code went out for the key (to a number nobody ever verified when `newNumber`). */
  countSent(keyId: number, newNumber: boolean): Promise<void>;
  /** One of the key's codes was approved. */
  countApproved(keyId: number): Promise<void>;
  /**
   * Takes one code from the API's share of the day's budget; `giveBack` when it did not go out.
   * Not taken: the seconds until the share renews (midnight UTC).
   */
  takeBudget(): Promise<{ ok: true; giveBack(): Promise<void> } | { ok: false; retryAfterSeconds: number }>;
}

export function createKeyConversion(deps: {
  limits: RateLimitStore;
  sending: SendingStore;
  clock: Clock;
  audit: AuditLog;
  logger: Logger;
  /** SEND_BUDGET_PER_DAY. */
  budgetPerDay: number;
  /** FRAUD_GUARD=record: the pause is noted, not enforced, as the rest of the guard. */
  enforcing: boolean;
}): KeyConversion {
  const { limits, sending, clock, audit, logger } = deps;
  const secondsUntil = (at: Date) => Math.max(1, Math.ceil((at.getTime() - clock.now().getTime()) / 1000));
  const apiBudget = Math.floor(API_BUDGET_SHARE * deps.budgetPerDay);

  async function lastHours(keyId: number, counted: Counted) {
    const hour = hourOf(clock.now());
    const [now, before] = await Promise.all([
      limits.get(countKey(keyId, counted, hour)),
      limits.get(countKey(keyId, counted, hour - 1)),
    ]);
    return (now?.count ?? 0) + (before?.count ?? 0);
  }

  async function count(keyId: number, counted: Counted) {
    // Two hours: the counter is read as "the hour before" during the next one.
    await limits.increment(countKey(keyId, counted, hourOf(clock.now())), 2 * HOUR_MS);
  }

  async function noticePause(key: ApiKey, stats: { sent: number; newNumbers: number; approved: number }) {
    const detail = `API key "${key.name}": codes to never-verified numbers paused for an hour (${stats.newNumbers} to such numbers and ${stats.approved} of ${stats.sent} approved in about an hour)${deps.enforcing ? '' : '; record mode: not enforced'}`;
    logger.error(
      { apiKey: key.id, ...stats, enforcing: deps.enforcing },
      'API key conversion check: codes to never-verified numbers paused for an hour (SMS pumping?)',
    );
    await audit.record({ type: 'sending_paused', username: apiUsername(key), detail });
  }

  return {
    async check(key, to) {
      const newNumber = !(await sending.isVerifiedNumber(to, new Date(0)));
      if (!newNumber) return { allowed: true, newNumber };
      const refused = (until: Date) => ({
        allowed: false as const,
        retryAfterSeconds: secondsUntil(until),
        detail: 'This API key’s codes to new numbers are paused: too few of its codes are completed.',
      });
      const paused = await limits.get(pauseKey(key.id));
      if (paused && deps.enforcing) return refused(paused.resetAt);
      if (paused) return { allowed: true, newNumber };

      const [sent, newNumbers, approved] = await Promise.all([
        lastHours(key.id, 'sent'),
        lastHours(key.id, 'new'),
        lastHours(key.id, 'approved'),
      ]);
      if (newNumbers < NEW_NUMBER_FLOOR || approved >= APPROVED_SHARE * sent) {
        return { allowed: true, newNumber };
      }
      const pause = await limits.increment(pauseKey(key.id), KEY_PAUSE_MS);
      if (pause.count === 1) await noticePause(key, { sent, newNumbers, approved });
      return deps.enforcing ? refused(pause.resetAt) : { allowed: true, newNumber };
    },

    async countSent(keyId, newNumber) {
      await count(keyId, 'sent');
      if (newNumber) await count(keyId, 'new');
    },

    countApproved: (keyId) => count(keyId, 'approved'),

    async takeBudget() {
      const now = clock.now();
      const key = apiBudgetKey(now);
      const taken = await limits.increment(key, msUntilUtcMidnight(now));
      const giveBack = async () => {
        await limits.decrement(key, taken.window);
      };
      if (taken.count <= apiBudget) return { ok: true, giveBack };
      await giveBack();
      if (taken.count === apiBudget + 1) {
        // Said once a day, when the share is first found spent.
        const once = await limits.increment(`${key}:noticed`, msUntilUtcMidnight(now));
        if (once.count === 1) {
          logger.error(
            { budget: deps.budgetPerDay, apiShare: apiBudget },
            'the verification API has spent its half of SEND_BUDGET_PER_DAY: API codes wait until midnight UTC',
          );
          await audit.record({
            type: 'send_budget_spent',
            detail: `verification API: ${apiBudget} codes today (half of the budget ${deps.budgetPerDay})`,
          });
        }
      }
      if (!deps.enforcing) return { ok: true, giveBack: async () => undefined };
      return {
        ok: false,
        retryAfterSeconds: secondsUntil(new Date(now.getTime() + msUntilUtcMidnight(now))),
      };
    },
  };
}
