import type { AuditLog } from '../audit/log.js';
import type { RateLimitStore, WindowCount } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { FraudGuardMode } from './config.js';
import type { SendingStore } from './store.js';

/**
 * What the send and registration guards share: counters taken in the shared store before the
 * slow step, and one way to note a refusal (or, in record mode, what would have been one).
 */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export const RULE_LABELS = {
  country: 'country not in SMS_COUNTRIES',
  voip: 'VoIP number',
  number_10min: 'codes per number in 10 minutes',
  number_day: 'codes per number in a day',
  address_hour: 'codes per address in an hour',
  address_day: 'codes per address in a day',
  network_hour: 'codes per IPv6 /48 in an hour',
  network_day: 'codes per IPv6 /48 in a day',
  address_countries: 'countries per address in a day',
  budget: 'daily budget',
  breaker: 'conversion breaker',
  registrations_per_address: 'new accounts per address in an hour',
  registrations_per_network: 'new accounts per IPv6 /48 in an hour',
  accounts_per_phone: 'accounts per phone number',
} as const;
export type FraudRule = keyof typeof RULE_LABELS;

export interface CounterSpec<Rule extends FraudRule> {
  key: string;
  windowMs: number;
  /** The count a window may reach; one more is a violation. */
  limit: number;
  rule: Rule;
}

export interface Violation<Rule extends FraudRule = FraudRule> {
  rule: Rule;
  /** When this rule would let the attempt through again. */
  clearsAt: Date;
  detail: string;
}

export interface TakenCounters<Rule extends FraudRule> {
  /** Each counter's window after this attempt, in the order given. */
  counts: WindowCount[];
  violations: Violation<Rule>[];
  /**
   * Hands every counter back: the attempt was refused, or what it paid for never happened. Each
   * goes to the window it was taken in, or nowhere if that one has ended: a send that fails after
   * a window ended (a slow provider, a day's midnight) must not free a place in the next one.
   */
  release(): Promise<void>;
}

/**
 * Takes one from each counter at once and only then looks at the counts, so requests racing each
 * other (one process or many, through a shared store) stop at the same limits: of N parallel
 * attempts at a limit of L, exactly L see a count within it.
 */
export async function takeCounters<Rule extends FraudRule>(
  limits: RateLimitStore,
  specs: CounterSpec<Rule>[],
): Promise<TakenCounters<Rule>> {
  const taken = await Promise.allSettled(specs.map((spec) => limits.increment(spec.key, spec.windowMs)));
  const failed = taken.find((outcome) => outcome.status === 'rejected');
  if (failed) {
    // The store failed some: those taken go back (best effort), so a failed attempt holds nothing.
    await Promise.allSettled(
      taken.map((outcome, index) =>
        outcome.status === 'fulfilled' ? limits.decrement(specs[index]!.key, outcome.value.window) : null,
      ),
    );
    throw failed.reason;
  }
  const counts = taken.map((outcome) => (outcome as PromiseFulfilledResult<WindowCount>).value);
  const violations = specs.flatMap((spec, index) => {
    const count = counts[index]!;
    return count.count > spec.limit
      ? [{ rule: spec.rule, clearsAt: count.resetAt, detail: `${count.count} of ${spec.limit}` }]
      : [];
  });
  let released = false;
  return {
    counts,
    violations,
    async release() {
      if (released) return;
      released = true;
      await Promise.all(specs.map((spec, index) => limits.decrement(spec.key, counts[index]!.window)));
    },
  };
}

/**
 * An IPv6 /48 (one site's allocation: 65,536 /64s) may do this many times what one address may,
 * so rotating through its /64s buys little, while several people on one network still fit.
 */
export const NETWORK_LIMIT_FACTOR = 5;

/**
 * Once the daily budget is spent, numbers that completed a code recently still get codes, up to
 * this multiple of SEND_BUDGET_PER_DAY: a hard ceiling on a day's bill.
 */
export const VERIFIED_BUDGET_FACTOR = 2;

/** The site-wide daily budget counts per UTC day, so "spent today" means what an operator expects. */
export const utcDay = (now: Date) => now.toISOString().slice(0, 10);
export const budgetKey = (now: Date) => `fraud:budget:${utcDay(now)}`;
export const msUntilUtcMidnight = (now: Date) => DAY_MS - (now.getTime() % DAY_MS);

/** Seconds until every violation has cleared: the only honest "try again in". */
export function secondsUntilClear(violations: Violation[], now: Date): number {
  const latest = Math.max(...violations.map((violation) => violation.clearsAt.getTime()));
  return Math.max(1, Math.ceil((latest - now.getTime()) / 1000));
}

export interface RefusalNote {
  what: 'send' | 'registration';
  violation: Violation;
  country: string;
  clientKey: string;
  userId?: number | null;
  username?: string;
  /** Short words on the attempt (scope, channel, masked number): never a full number or code. */
  attempt: string;
}

export interface FraudNotes {
  readonly enforcing: boolean;
  /** Audits, logs and counts one refusal; in record mode, one attempt that would have been refused. */
  refusal(note: RefusalNote): Promise<void>;
}

export function createFraudNotes(deps: {
  mode: FraudGuardMode;
  audit: AuditLog;
  logger: Logger;
  store: SendingStore;
}): FraudNotes {
  const enforcing = deps.mode === 'enforce';
  return {
    enforcing,
    async refusal({ what, violation, country, clientKey, userId, username, attempt }) {
      const { rule } = violation;
      await deps.store.countEvent(country, `${enforcing ? 'refused' : 'flagged'}:${rule}`);
      await deps.audit.record({
        type: `${what === 'send' ? 'code_send' : 'registration'}_${enforcing ? 'refused' : 'flagged'}`,
        userId: userId ?? null,
        username: username ?? null,
        ip: clientKey,
        detail: `${RULE_LABELS[rule]} (${violation.detail}); ${attempt}`,
      });
      deps.logger.warn(
        { rule, country, address: clientKey, userId, mode: deps.mode },
        enforcing
          ? `${what} refused by the fraud guard: ${RULE_LABELS[rule]}`
          : `${what} would have been refused (FRAUD_GUARD=record): ${RULE_LABELS[rule]}`,
      );
    },
  };
}

/**
 * Hands back what an attempt took when it failed on its way (a store away, an audit write failing),
 * so that it holds no place until its windows end. The failure is what the caller throws; a
 * hand-back that fails too is only logged.
 */
export async function handBackAfterFailure(
  release: () => Promise<void>,
  failure: unknown,
  logger: Logger,
  what: 'send' | 'sign-up',
): Promise<void> {
  try {
    await release();
  } catch (error) {
    logger.warn({ err: error, failure: String(failure) }, `a failed ${what} could not hand back its limits`);
  }
}
