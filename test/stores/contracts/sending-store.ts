import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SendingStore } from '../../../src/fraud/store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every SendingStore backend promises (src/fraud/store.ts): verified numbers and counts per
 * country, event and UTC hour, shared by every instance, with racing counts adding up.
 */
export interface SendingStoreHarness {
  store: SendingStore;
  /** The same facts reached another way: a second connection, as a second instance has. */
  peer: SendingStore;
  /** Both stores' clock; it starts at 2026-11-21T10:00:00Z. */
  clock: TestClock;
  close(): Promise<void>;
}

const HOUR_MS = 60 * 60_000;
const DAY_MS = 24 * HOUR_MS;

export function describeSendingStoreContract(
  backend: string,
  open: () => Promise<SendingStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`SendingStore contract: ${backend}`, () => {
    let harness: SendingStoreHarness;
    let store: SendingStore;
    let clock: TestClock;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      clock = harness.clock;
    });
    afterEach(() => harness.close());

    /** `times` counts of one event, taken at once, alternately on each connection. */
    const countTimes = (times: number, country: string, event: Parameters<SendingStore['countEvent']>[1]) =>
      Promise.all(
        Array.from({ length: times }, (_, i) =>
          (i % 2 === 0 ? store : harness.peer).countEvent(country, event),
        ),
      );

    it('knows a number as verified once it completed a code, on every instance', async () => {
      expect(await store.isVerifiedNumber('+12025550142')).toBe(false);
      await store.markVerified('+12025550142');
      clock.advance(DAY_MS);
      await harness.peer.markVerified('+12025550142');
      expect(await harness.peer.isVerifiedNumber('+12025550142')).toBe(true);
      expect(await store.isVerifiedNumber('+12025550143')).toBe(false);
    });

    it('adds up racing counts from two instances, per country and event', async () => {
      // Threat: counts overwriting each other would hide a pumping run from the breaker and the view.
      await countTimes(30, 'AU', 'sent');
      await countTimes(4, 'AU', 'refused:per-number');
      await countTimes(2, 'US', 'verified');

      const since = new Date(clock.now().getTime() - HOUR_MS);
      expect(await harness.peer.countsSince(since)).toEqual([
        { country: 'AU', event: 'refused:per-number', count: 4 },
        { country: 'AU', event: 'sent', count: 30 },
        { country: 'US', event: 'verified', count: 2 },
      ]);
    });

    it('sums the hours from the one `since` falls in, and leaves out the ones before', async () => {
      await store.countEvent('AU', 'sent');
      clock.advance(HOUR_MS);
      await store.countEvent('AU', 'sent');
      await store.countEvent('AU', 'sent');
      clock.advance(HOUR_MS);
      await store.countEvent('AU', 'sent');

      // Ten minutes into the second hour: that whole hour counts, the first does not.
      const intoSecondHour = new Date(clock.now().getTime() - HOUR_MS + 10 * 60_000);
      expect(await store.countsSince(intoSecondHour)).toEqual([{ country: 'AU', event: 'sent', count: 3 }]);
      expect(await store.countsSince(new Date(clock.now().getTime() + HOUR_MS))).toEqual([]);
    });

    it('answers the highest count of one UTC day, from the day `since` falls in', async () => {
      // 2026-11-21 10:00 UTC: 3 today. The next day: 2 in the morning, 3 in the evening (5).
      // The day after: 1.
      await countTimes(3, 'US', 'verified');
      clock.set(new Date('2026-11-22T08:00:00Z'));
      await countTimes(2, 'US', 'verified');
      clock.set(new Date('2026-11-22T20:00:00Z'));
      await countTimes(3, 'US', 'verified');
      await store.countEvent('US', 'sent');
      await store.countEvent('CA', 'verified');
      clock.set(new Date('2026-11-23T01:00:00Z'));
      await store.countEvent('US', 'verified');

      expect(await store.highestDailyCount('US', 'verified', new Date('2026-11-21T23:59:00Z'))).toBe(5);
      expect(await store.highestDailyCount('US', 'verified', new Date('2026-11-23T00:00:00Z'))).toBe(1);
      expect(await harness.peer.highestDailyCount('CA', 'verified', new Date('2026-11-20T00:00:00Z'))).toBe(
        1,
      );
      expect(await store.highestDailyCount('AU', 'verified', new Date('2026-11-20T00:00:00Z'))).toBe(0);
    });

    it('forgets counts older than 15 days', async () => {
      await store.countEvent('AU', 'sent');
      const start = clock.now();
      clock.advance(16 * DAY_MS);
      await store.countEvent('US', 'sent');

      expect(await store.countsSince(new Date(start.getTime() - DAY_MS))).toEqual([
        { country: 'US', event: 'sent', count: 1 },
      ]);
    });
  });
}
