import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HEALTHY, type ProviderHealthStore } from '../../../src/mfa/providers/provider-health.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every ProviderHealthStore backend promises (src/mfa/providers/provider-health.ts): the
 * circuit breaker's state, the same for every instance, with outages counted atomically.
 */
export interface ProviderHealthStoreHarness {
  store: ProviderHealthStore;
  /** The same state reached another way: a second connection, as a second instance has. */
  peer: ProviderHealthStore;
  clock: TestClock;
  /** Lets `ms` pass for the store (and for real, where Redis counts the cooldown down). */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Long enough that no cooldown ends by itself during a spec, even on a busy machine. */
const LONG_COOLDOWN_MS = 60_000;
/** Short enough to wait out for real against Redis. */
const SHORT_COOLDOWN_MS = 300;
/** How far a reported end of the cooldown may fall short of the exact one (Redis reports the time left). */
const SLACK_MS = 150;

export function describeProviderHealthStoreContract(
  backend: string,
  open: () => Promise<ProviderHealthStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`ProviderHealthStore contract: ${backend}`, () => {
    let harness: ProviderHealthStoreHarness;
    let store: ProviderHealthStore;
    let peer: ProviderHealthStore;
    const healthOf = async (name: string, from = store) => (await from.read([name]))[0]!;
    const msUntil = (date: Date) => date.getTime() - harness.clock.now().getTime();

    beforeEach(async () => {
      harness = await open();
      ({ store, peer } = harness);
    });
    afterEach(() => harness.close());

    it('reports providers never recorded as healthy, in the order asked', async () => {
      expect(await store.read(['twilio', 'signalwire'])).toEqual([HEALTHY, HEALTHY]);
      expect(await store.read([])).toEqual([]);
    });

    it('counts outages in a row from every instance, and skips nobody below the threshold', async () => {
      const rule = { threshold: 3, cooldownMs: LONG_COOLDOWN_MS };
      await store.recordOutage('twilio', rule);
      await peer.recordOutage('twilio', rule);
      expect(await healthOf('twilio')).toEqual({ ...HEALTHY, outagesInARow: 2 });
    });

    it('skips a provider for the cooldown once the threshold is reached, on every instance', async () => {
      const rule = { threshold: 2, cooldownMs: LONG_COOLDOWN_MS };
      await store.recordOutage('twilio', rule);
      await peer.recordOutage('twilio', rule);
      const seen = await healthOf('twilio', store);
      expect(seen).toMatchObject({ outagesInARow: 2, breakerOpened: true });
      expect(msUntil(seen.skippedUntil!)).toBeLessThanOrEqual(LONG_COOLDOWN_MS);
      expect(msUntil(seen.skippedUntil!)).toBeGreaterThan(LONG_COOLDOWN_MS - SLACK_MS);
    });

    it('counts every one of many outages recorded at once by two instances', async () => {
      const rule = { threshold: 5, cooldownMs: LONG_COOLDOWN_MS };
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : peer).recordOutage('twilio', rule)),
      );
      const seen = await healthOf('twilio');
      expect(seen.outagesInARow).toBe(20);
      expect(seen.skippedUntil).not.toBeNull();
    });

    it('keeps providers apart', async () => {
      await store.recordOutage('twilio', { threshold: 1, cooldownMs: LONG_COOLDOWN_MS });
      const [twilio, signalwire] = await peer.read(['twilio', 'signalwire']);
      expect(twilio!.skippedUntil).not.toBeNull();
      expect(signalwire).toEqual(HEALTHY);
    });

    it('makes a provider healthy again on an answer from any instance', async () => {
      await store.recordOutage('twilio', { threshold: 1, cooldownMs: LONG_COOLDOWN_MS });
      await peer.recordAnswer('twilio');
      expect(await healthOf('twilio')).toEqual(HEALTHY);
    });

    it('tries it again once the cooldown is over, and skips it again after a single outage there', async () => {
      const rule = { threshold: 2, cooldownMs: SHORT_COOLDOWN_MS };
      await store.recordOutage('twilio', rule);
      await store.recordOutage('twilio', rule);
      await harness.elapse(SHORT_COOLDOWN_MS);
      expect(await healthOf('twilio', peer)).toEqual({
        outagesInARow: 2,
        misconfigured: false,
        breakerOpened: true,
        skippedUntil: null,
      });

      await peer.recordOutage('twilio', { ...rule, cooldownMs: LONG_COOLDOWN_MS });
      expect((await healthOf('twilio')).skippedUntil).not.toBeNull();
    });

    it('reports a provider that refused our credentials as misconfigured, never skipped, until it answers', async () => {
      await store.recordOutage('twilio', { threshold: 1, cooldownMs: LONG_COOLDOWN_MS });
      await peer.recordMisconfigured('twilio');
      expect(await healthOf('twilio')).toEqual({ ...HEALTHY, misconfigured: true });
      await store.recordAnswer('twilio');
      expect(await healthOf('twilio')).toEqual(HEALTHY);
    });

    it('never skips a provider when the cooldown is zero (MFA_PROVIDER_COOLDOWN_SECONDS=0)', async () => {
      await store.recordOutage('twilio', { threshold: 1, cooldownMs: 0 });
      expect(await healthOf('twilio')).toMatchObject({ outagesInARow: 1, skippedUntil: null });
    });
  });
}
