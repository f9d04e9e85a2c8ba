import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SendingStore } from '../../../src/fraud/store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every SendingStore backend promises (src/fraud/store.ts): verified numbers, the accounts
 * that verified them and the day's first verification, and counts per country, event and UTC hour,
 * shared by every instance, with racing counts adding up.
 */
export interface SendingStoreHarness {
  store: SendingStore;
  /** The same facts reached another way: a second connection, as a second instance has. */
  peer: SendingStore;
  /** Both stores' clock; it starts at 2026-11-21T10:00:00Z. */
  clock: TestClock;
  /** A new account's id (verifications belong to accounts that exist). */
  newAccount(): Promise<number>;
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

    it('knows a number as verified, on every instance, from its latest completed code on', async () => {
      const alice = await harness.newAccount();
      const start = clock.now();
      expect(await store.isVerifiedNumber('+12025550142', start)).toBe(false);
      await store.markVerified('+12025550142', alice);
      expect(await harness.peer.isVerifiedNumber('+12025550142', start)).toBe(true);

      // A code completed again, later the same day, moves "latest" on.
      clock.advance(HOUR_MS);
      await harness.peer.markVerified('+12025550142', alice);
      const afterFirst = new Date(start.getTime() + 1);
      expect(await store.isVerifiedNumber('+12025550142', afterFirst)).toBe(true);
      expect(await store.isVerifiedNumber('+12025550142', new Date(clock.now().getTime() + 1))).toBe(false);
      expect(await store.isVerifiedNumber('+12025550143', start)).toBe(false);
    });

    it('knows which accounts completed a code to a number, on every instance', async () => {
      // Threat: a stranger's account on someone's number taking the allowance of the one who holds it.
      const holder = await harness.newAccount();
      const stranger = await harness.newAccount();
      await store.markVerified('+12025550142', holder);
      expect(await harness.peer.hasAccountVerified('+12025550142', holder)).toBe(true);
      expect(await harness.peer.hasAccountVerified('+12025550142', stranger)).toBe(false);
      expect(await store.hasAccountVerified('+12025550143', holder)).toBe(false);
    });

    it('knows a number completed through the verification API as verified, and no account as its holder', async () => {
      const alice = await harness.newAccount();
      expect(await store.markVerified('+12025550142', null)).toEqual({ firstToday: true });
      expect(await harness.peer.isVerifiedNumber('+12025550142', clock.now())).toBe(true);
      expect(await harness.peer.hasAccountVerified('+12025550142', alice)).toBe(false);
      expect(await store.markVerified('+12025550142', alice)).toEqual({ firstToday: false });
      expect(await store.hasAccountVerified('+12025550142', alice)).toBe(true);
    });

    it("says firstToday for a number's first completed code of each UTC day only, whichever account", async () => {
      // The breaker's history counts numbers verified per day: one number verified again and
      // again must not raise it.
      const alice = await harness.newAccount();
      const bob = await harness.newAccount();
      expect(await store.markVerified('+12025550142', alice)).toEqual({ firstToday: true });
      expect(await harness.peer.markVerified('+12025550142', alice)).toEqual({ firstToday: false });
      expect(await store.markVerified('+12025550142', bob)).toEqual({ firstToday: false });
      expect(await store.markVerified('+12025550143', bob)).toEqual({ firstToday: true });
      clock.set(new Date('2026-11-22T00:00:00Z'));
      expect(await harness.peer.markVerified('+12025550142', bob)).toEqual({ firstToday: true });
    });

    it('says firstToday to exactly one of racing completions for one number, on two instances', async () => {
      const accounts = await Promise.all(Array.from({ length: 4 }, () => harness.newAccount()));
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? store : harness.peer).markVerified('+12025550142', accounts[i % 4]!),
        ),
      );
      expect(answers.filter((answer) => answer.firstToday)).toHaveLength(1);
      for (const account of accounts)
        expect(await store.hasAccountVerified('+12025550142', account)).toBe(true);
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
