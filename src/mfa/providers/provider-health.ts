import type { Clock } from '../../clock.js';

/**
 * The circuit breaker's memory of each provider (pool.ts): how it has been answering, and whether
 * new codes go elsewhere for now. Several instances share it (in Redis), so a provider that one
 * instance found down is skipped by all of them, rather than each paying for the outage itself.
 */
export interface ProviderHealth {
  /** Outages (no answer) in a row since its last answer. */
  outagesInARow: number;
  /** Its last answer refused our credentials or configuration: up, but not working. */
  misconfigured: boolean;
  /** The breaker opened and no answer has come since: one more outage skips it again at once. */
  breakerOpened: boolean;
  /** Until when new codes go elsewhere (by the app's clock); null while it is not being skipped. */
  skippedUntil: Date | null;
}

export interface BreakerRule {
  /** Outages in a row that open the breaker. */
  threshold: number;
  /** How long an opened breaker skips the provider. */
  cooldownMs: number;
}

export interface ProviderHealthStore {
  /** Each named provider's health, in the order asked; a provider never recorded is healthy. */
  read(names: readonly string[]): Promise<ProviderHealth[]>;
  /** It answered (whatever the answer): healthy again, breaker closed. */
  recordAnswer(name: string): Promise<void>;
  /** It refused our credentials or configuration: not an outage, so never skipped, but failing. */
  recordMisconfigured(name: string): Promise<void>;
  /**
   * One more outage, counted in one atomic step so outages seen by several instances at once all
   * count: the breaker opens for `cooldownMs` once `threshold` are in a row, or at once when it
   * had opened before with no answer since.
   */
  recordOutage(name: string, rule: BreakerRule): Promise<void>;
}

export const HEALTHY: ProviderHealth = Object.freeze({
  outagesInARow: 0,
  misconfigured: false,
  breakerOpened: false,
  skippedUntil: null,
});

interface Entry {
  outagesInARow: number;
  misconfigured: boolean;
  /** Set when the breaker opened; stays set (in the past) while the provider is on probation. */
  skippedUntil: number | null;
}

/** The breaker's memory in this process: enough for one instance. */
export function createMemoryProviderHealthStore(clock: Clock): ProviderHealthStore {
  const entries = new Map<string, Entry>();
  const now = () => clock.now().getTime();

  return {
    async read(names) {
      return names.map((name) => {
        const entry = entries.get(name);
        if (!entry) return { ...HEALTHY };
        const { outagesInARow, misconfigured, skippedUntil } = entry;
        return {
          outagesInARow,
          misconfigured,
          breakerOpened: skippedUntil !== null,
          skippedUntil: skippedUntil !== null && now() < skippedUntil ? new Date(skippedUntil) : null,
        };
      });
    },
    async recordAnswer(name) {
      entries.delete(name);
    },
    async recordMisconfigured(name) {
      entries.set(name, { outagesInARow: 0, misconfigured: true, skippedUntil: null });
    },
    async recordOutage(name, { threshold, cooldownMs }) {
      const entry = entries.get(name) ?? { outagesInARow: 0, misconfigured: false, skippedUntil: null };
      entry.outagesInARow += 1;
      if (entry.outagesInARow >= threshold || entry.skippedUntil !== null)
        entry.skippedUntil = now() + cooldownMs;
      entries.set(name, entry);
    },
  };
}
