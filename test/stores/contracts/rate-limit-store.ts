import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RateLimitStore } from '../../../src/http/rate-limit.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every RateLimitStore backend promises (src/http/rate-limit.ts). Each backend's test file
 * calls describeRateLimitStoreContract with a way to open a fresh, empty store for one test.
 */
export interface RateLimitStoreHarness {
  store: RateLimitStore;
  /** The same counters reached another way: a second connection, as a second instance of the site has. */
  peer: RateLimitStore;
  clock: TestClock;
  /**
   * Lets `ms` pass for the store. The test clock moves; a backend whose windows Redis times also
   * waits that long for real, so windows in these specs are a few hundred milliseconds at most.
   */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Long enough that no window ends by itself during a spec, even on a busy machine. */
const LONG_WINDOW_MS = 60_000;
/** Short enough to wait out for real against Redis. */
const SHORT_WINDOW_MS = 300;
/** How far a reported window end may fall short of the exact one (Redis reports the time left). */
const SLACK_MS = 150;

export function describeRateLimitStoreContract(
  backend: string,
  open: () => Promise<RateLimitStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`RateLimitStore contract: ${backend}`, () => {
    let harness: RateLimitStoreHarness;
    let store: RateLimitStore;
    const msUntil = (date: Date) => date.getTime() - harness.clock.now().getTime();

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
    });
    afterEach(() => harness.close());

    it('has no window for a key never counted', async () => {
      expect(await store.get('login:user:nobody')).toBeNull();
    });

    it('opens a window of the asked length on the first increment', async () => {
      const first = await store.increment('k', LONG_WINDOW_MS);
      expect(first.count).toBe(1);
      expect(msUntil(first.resetAt)).toBeLessThanOrEqual(LONG_WINDOW_MS);
      expect(msUntil(first.resetAt)).toBeGreaterThan(LONG_WINDOW_MS - SLACK_MS);
    });

    it('counts up within the window and never moves its end', async () => {
      const first = await store.increment('k', LONG_WINDOW_MS);
      // Longer than the slack, so a window that restarted on each increment would show.
      await harness.elapse(2 * SLACK_MS);
      const second = await store.increment('k', LONG_WINDOW_MS);
      // Asked again with another length, the open window still decides.
      const third = await store.increment('k', 5 * LONG_WINDOW_MS);
      expect([second.count, third.count]).toEqual([2, 3]);
      expect(Math.abs(second.resetAt.getTime() - first.resetAt.getTime())).toBeLessThanOrEqual(SLACK_MS);
      expect(Math.abs(third.resetAt.getTime() - first.resetAt.getTime())).toBeLessThanOrEqual(SLACK_MS);
    });

    it('reads the count and window end without changing them', async () => {
      await store.increment('k', LONG_WINDOW_MS);
      const counted = await store.increment('k', LONG_WINDOW_MS);
      const read = await store.get('k');
      expect(read?.count).toBe(2);
      expect(Math.abs(read!.resetAt.getTime() - counted.resetAt.getTime())).toBeLessThanOrEqual(SLACK_MS);
      expect((await store.get('k'))?.count).toBe(2);
    });

    it('keeps every key apart', async () => {
      await store.increment('login:user:alice', LONG_WINDOW_MS);
      await store.increment('login:user:alice', LONG_WINDOW_MS);
      expect((await store.increment('login:user:bob', LONG_WINDOW_MS)).count).toBe(1);
      expect((await store.get('login:user:alice'))?.count).toBe(2);
    });

    it('starts again from one once the window has ended', async () => {
      await store.increment('k', SHORT_WINDOW_MS);
      await store.increment('k', SHORT_WINDOW_MS);
      await harness.elapse(SHORT_WINDOW_MS);
      expect(await store.get('k')).toBeNull();
      const again = await store.increment('k', LONG_WINDOW_MS);
      expect(again.count).toBe(1);
      expect(msUntil(again.resetAt)).toBeGreaterThan(LONG_WINDOW_MS - SLACK_MS);
    });

    it('takes one back with decrement, never below zero', async () => {
      const { window } = await store.increment('k', LONG_WINDOW_MS);
      await store.increment('k', LONG_WINDOW_MS);
      await store.decrement('k', window);
      expect((await store.get('k'))?.count).toBe(1);
      await store.decrement('k', window);
      await store.decrement('k', window);
      expect((await store.get('k'))?.count).toBe(0);
      expect((await store.increment('k', LONG_WINDOW_MS)).count).toBe(1);
    });

    it('tells a hand-back the count it left, and null when it took nothing', async () => {
      const { window } = await store.increment('k', LONG_WINDOW_MS);
      await store.increment('k', LONG_WINDOW_MS);
      expect(await store.decrement('k', window)).toBe(1);
      expect(await harness.peer.decrement('k', window)).toBe(0);
      expect(await store.decrement('k', window)).toBeNull();
      const ended = await store.increment('other', SHORT_WINDOW_MS);
      await harness.elapse(SHORT_WINDOW_MS);
      expect(await store.decrement('other', ended.window)).toBeNull();
    });

    it('tells exactly one of many racing hand-backs, from two instances, that it left 0', async () => {
      // Threat: a place shared by several holders, handed back by the last one out, handed back
      // twice (or never) when two instances both (or neither) read the count as 0.
      let window = '';
      for (let i = 0; i < 10; i += 1) ({ window } = await store.increment('k', LONG_WINDOW_MS));
      const left = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : harness.peer).decrement('k', window)),
      );
      expect(left.filter((count) => count === 0)).toHaveLength(1);
      expect(left.filter((count) => count === null)).toHaveLength(2);
      expect(left.filter((count) => count !== null).sort((a, b) => a! - b!)).toEqual(
        Array.from({ length: 10 }, (_, i) => i),
      );
    });

    it('does not open a window when taking one back from a key with none', async () => {
      const { window } = await store.increment('k', LONG_WINDOW_MS);
      await store.reset('k');
      await store.decrement('k', window);
      expect(await store.get('k')).toBeNull();
      expect((await store.increment('k', LONG_WINDOW_MS)).count).toBe(1);
    });

    it('takes nothing back from a call that names no window', async () => {
      // Threat: a hand-back without its window lands in whatever window is open by then. The type
      // requires the window; code that gets past it (a cast, plain JavaScript) takes nothing.
      await store.increment('k', LONG_WINDOW_MS);
      // @ts-expect-error the window a count was taken in is required
      await store.decrement('k');
      expect((await store.get('k'))?.count).toBe(1);
    });

    it('never stretches the window when taking one back', async () => {
      // Threat: a refused attempt that hands its reservation back would otherwise keep a pause going for ever.
      const first = await store.increment('k', SHORT_WINDOW_MS);
      await store.increment('k', SHORT_WINDOW_MS);
      await harness.elapse(SHORT_WINDOW_MS / 2);
      await store.decrement('k', first.window);
      const read = await store.get('k');
      expect(read?.count).toBe(1);
      expect(Math.abs(read!.resetAt.getTime() - first.resetAt.getTime())).toBeLessThanOrEqual(SLACK_MS);
      await harness.elapse(SHORT_WINDOW_MS / 2);
      expect(await store.get('k')).toBeNull();
    });

    it('takes one back from the window it names while that window is open', async () => {
      const first = await store.increment('k', LONG_WINDOW_MS);
      const second = await store.increment('k', LONG_WINDOW_MS);
      expect(second.window).toBe(first.window);
      expect((await store.get('k'))?.window).toBe(first.window);
      await harness.peer.decrement('k', first.window);
      expect((await store.get('k'))?.count).toBe(1);
    });

    it('takes nothing from a later window when the one named has ended', async () => {
      // Threat: a reservation handed back just after its window ended gives the next one a free attempt.
      const reserved = await store.increment('k', SHORT_WINDOW_MS);
      await harness.elapse(SHORT_WINDOW_MS);
      await store.increment('k', LONG_WINDOW_MS);
      const next = await store.increment('k', LONG_WINDOW_MS);
      expect(next.window).not.toBe(reserved.window);
      await store.decrement('k', reserved.window);
      expect((await store.get('k'))?.count).toBe(2);
      await store.decrement('k', next.window);
      expect((await store.get('k'))?.count).toBe(1);
    });

    it('takes nothing, and opens nothing, when the window named has ended and none is open', async () => {
      const reserved = await store.increment('k', SHORT_WINDOW_MS);
      await harness.elapse(SHORT_WINDOW_MS);
      await store.decrement('k', reserved.window);
      expect(await store.get('k')).toBeNull();
    });

    it('takes nothing from the window opened after a reset', async () => {
      const reserved = await store.increment('k', LONG_WINDOW_MS);
      await store.reset('k');
      // Later than the reserved window's end by more than a millisecond, as any later window is
      // except one opened in the same millisecond (see the Redis store).
      await harness.elapse(5);
      await store.increment('k', LONG_WINDOW_MS);
      await store.decrement('k', reserved.window);
      expect((await store.get('k'))?.count).toBe(1);
    });

    it('forgets a key on reset, and the next increment opens a new window', async () => {
      await store.increment('k', LONG_WINDOW_MS);
      await store.increment('k', LONG_WINDOW_MS);
      await store.reset('k');
      expect(await store.get('k')).toBeNull();
      expect((await store.increment('k', LONG_WINDOW_MS)).count).toBe(1);
    });

    it('sees the counts another instance made', async () => {
      const first = await store.increment('k', LONG_WINDOW_MS);
      expect((await harness.peer.increment('k', LONG_WINDOW_MS)).count).toBe(2);
      await harness.peer.decrement('k', first.window);
      expect((await store.get('k'))?.count).toBe(1);
    });

    it('gives 50 parallel increments, from two instances, the counts 1 to 50 once each', async () => {
      // Threat: two requests that read the same count would both pass a limit meant for one.
      const counts = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 === 0 ? store : harness.peer).increment('k', LONG_WINDOW_MS),
        ),
      );
      expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      expect((await store.get('k'))?.count).toBe(50);
    });

    it('stops racing attempts from two instances at the same limit', async () => {
      // Reserve, then hand back when over the limit: what the login throttle and MFA service do.
      const LIMIT = 5;
      const attempt = async (limits: RateLimitStore) => {
        const { count, window } = await limits.increment('k', LONG_WINDOW_MS);
        if (count <= LIMIT) return true;
        await limits.decrement('k', window);
        return false;
      };
      const allowed = await Promise.all(
        Array.from({ length: 20 }, (_, i) => attempt(i % 2 === 0 ? store : harness.peer)),
      );
      expect(allowed.filter(Boolean)).toHaveLength(LIMIT);
      expect((await store.get('k'))?.count).toBe(LIMIT);
    });

    it('never goes below zero when many take one back at once', async () => {
      const { window } = await store.increment('k', LONG_WINDOW_MS);
      await store.increment('k', LONG_WINDOW_MS);
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : harness.peer).decrement('k', window)),
      );
      expect((await store.get('k'))?.count).toBe(0);
      expect((await store.increment('k', LONG_WINDOW_MS)).count).toBe(1);
    });

    describe('sets of distinct members', () => {
      const LIMIT = 3;
      const hold = (member: string, limits = store) =>
        limits.holdMember('set', member, LIMIT, LONG_WINDOW_MS);
      /** A hold that can never join reads the set's size and changes nothing. */
      const sizeOfSet = async () => (await store.holdMember('set', '(probe)', 0, LONG_WINDOW_MS)).members;

      it('holds distinct members up to the limit, then refuses a new one and changes nothing', async () => {
        const holds = [await hold('US'), await hold('CA'), await hold('GB')];
        expect(holds.map(({ held, members }) => [held, members])).toEqual([
          [true, 1],
          [true, 2],
          [true, 3],
        ]);
        const refused = await hold('AU');
        expect(refused).toMatchObject({ held: false, members: 3, window: holds[0]!.window });
        expect(await sizeOfSet()).toBe(3);
        expect(msUntil(refused.resetAt)).toBeGreaterThan(LONG_WINDOW_MS - SLACK_MS);
      });

      it('holds a member already in the set again, past the limit, from any instance', async () => {
        for (const member of ['US', 'CA', 'GB']) await hold(member);
        expect(await hold('US', harness.peer)).toMatchObject({ held: true, members: 3 });
        expect(await hold('GB')).toMatchObject({ held: true, members: 3 });
        expect((await hold('AU')).held).toBe(false);
      });

      it('keeps keys, and the counts of other keys, apart', async () => {
        for (const member of ['US', 'CA', 'GB']) await hold(member);
        expect(await store.holdMember('other', 'AU', LIMIT, LONG_WINDOW_MS)).toMatchObject({
          held: true,
          members: 1,
        });
      });

      it('frees a place only when the last holder of a member releases it', async () => {
        const first = await hold('US');
        await hold('US');
        await hold('CA');
        await hold('GB');
        await store.releaseMember('set', 'US', first.window);
        expect((await hold('AU')).held).toBe(false);
        await harness.peer.releaseMember('set', 'US', first.window);
        expect(await hold('AU')).toMatchObject({ held: true, members: 3 });
        // US left the set: held again, it is a new member, and there is no room for it.
        expect((await hold('US')).held).toBe(false);
      });

      it('ignores the release of a member not in the set, or not held by the caller', async () => {
        const first = await hold('US');
        await hold('CA');
        await store.releaseMember('set', 'AU', first.window);
        // @ts-expect-error the window a member was held in is required
        await store.releaseMember('set', 'US');
        expect(await sizeOfSet()).toBe(2);
      });

      it('keeps the window its first hold opened, and starts empty once it has ended', async () => {
        const first = await hold('US');
        await hold('CA');
        await hold('GB');
        // Longer than the slack, so a window that restarted on each hold would show.
        await harness.elapse(2 * SLACK_MS);
        // Asked with another length, the open window still decides.
        const later = await store.holdMember('set', 'US', LIMIT, 5 * LONG_WINDOW_MS);
        expect(later.window).toBe(first.window);
        expect(Math.abs(later.resetAt.getTime() - first.resetAt.getTime())).toBeLessThanOrEqual(SLACK_MS);

        const short = await store.holdMember('short', 'US', LIMIT, SHORT_WINDOW_MS);
        await store.holdMember('short', 'CA', LIMIT, SHORT_WINDOW_MS);
        await harness.elapse(SHORT_WINDOW_MS);
        const next = await store.holdMember('short', 'GB', LIMIT, LONG_WINDOW_MS);
        expect(next).toMatchObject({ held: true, members: 1 });
        expect(next.window).not.toBe(short.window);
        expect(msUntil(next.resetAt)).toBeGreaterThan(LONG_WINDOW_MS - SLACK_MS);
      });

      it('releases nothing in a window that has ended or been reset', async () => {
        // Threat: a send failing after midnight freeing a place in the next day's set.
        const ended = await store.holdMember('short', 'US', 1, SHORT_WINDOW_MS);
        await harness.elapse(SHORT_WINDOW_MS);
        const next = await store.holdMember('short', 'US', 1, LONG_WINDOW_MS);
        await store.releaseMember('short', 'US', ended.window);
        expect((await store.holdMember('short', 'CA', 1, LONG_WINDOW_MS)).held).toBe(false);
        await store.releaseMember('short', 'US', next.window);
        expect((await store.holdMember('short', 'CA', 1, LONG_WINDOW_MS)).held).toBe(true);

        const before = await hold('US');
        await store.reset('set');
        expect(await sizeOfSet()).toBe(0);
        // Later than the reset window's end by more than a millisecond (see the Redis store).
        await harness.elapse(5);
        await hold('US');
        await store.releaseMember('set', 'US', before.window);
        expect(await sizeOfSet()).toBe(1);
      });

      it('names each window afresh, even one that ends in the very millisecond of the one before', async () => {
        // Threat: the send guard's sets all end at midnight, so a set reset (or emptied) and opened
        // again ends when the old one did; a late release of the old hold must not free a place.
        // Several rounds, since a window named by its end only collides when the ends meet.
        for (let round = 0; round < 10; round += 1) {
          const key = `midnight-${round}`;
          const endsAt = Date.now() + LONG_WINDOW_MS;
          const before = await store.holdMember(key, 'US', 1, endsAt - Date.now());
          await store.reset(key);
          const after = await store.holdMember(key, 'US', 1, endsAt - Date.now());
          expect(after.window).not.toBe(before.window);
          await store.releaseMember(key, 'US', before.window);
          expect((await store.holdMember(key, 'CA', 1, LONG_WINDOW_MS)).held).toBe(false);

          await store.releaseMember(key, 'US', after.window);
          const reopened = await store.holdMember(key, 'CA', 1, endsAt - Date.now());
          expect(reopened.held).toBe(true);
          expect(reopened.window).not.toBe(after.window);
          await store.releaseMember(key, 'US', after.window);
          expect((await store.holdMember(key, 'US', 1, LONG_WINDOW_MS)).held).toBe(false);
        }
      });

      it('refuses a limit or window it could not keep, on every backend', async () => {
        await expect(store.holdMember('set', 'US', Number.POSITIVE_INFINITY, LONG_WINDOW_MS)).rejects.toThrow(
          RangeError,
        );
        await expect(store.holdMember('set', 'US', 1.5, LONG_WINDOW_MS)).rejects.toThrow(RangeError);
        await expect(store.holdMember('set', 'US', 3, 0)).rejects.toThrow(RangeError);
        await expect(store.increment('count', 10.5)).rejects.toThrow(RangeError);
      });

      it('admits exactly the limit of members when holds of one more race from two instances', async () => {
        // Threat: sends to a fourth country racing the third's, each seeing room for itself.
        const members = ['US', 'CA', 'GB', 'AU'];
        const holds = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            hold(members[i % members.length]!, i % 2 === 0 ? store : harness.peer),
          ),
        );
        const heldMembers = new Set(
          holds.flatMap((result, i) => (result.held ? [members[i % members.length]!] : [])),
        );
        expect(heldMembers.size).toBe(LIMIT);
        // Every hold of one member got the same answer, and none saw more than the limit.
        for (const member of members) {
          const answers = holds
            .filter((_, i) => members[i % members.length] === member)
            .map((result) => result.held);
          expect(new Set(answers).size).toBe(1);
        }
        expect(Math.max(...holds.map((result) => result.members))).toBe(LIMIT);
        expect(await sizeOfSet()).toBe(LIMIT);
      });

      it('never has more than the limit of members while holders of others come and go on two instances', async () => {
        // Threat: a release and a hold interleaving so that a member leaving lets two join.
        const first = await hold('US');
        await hold('CA');
        const comeAndGo = async (member: string, limits: RateLimitStore) => {
          const result = await hold(member, limits);
          if (result.held) await limits.releaseMember('set', member, result.window);
          return result;
        };
        const results = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            comeAndGo(['GB', 'AU', 'CA'][i % 3]!, i % 2 === 0 ? store : harness.peer),
          ),
        );
        expect(Math.max(...results.map((result) => result.members))).toBeLessThanOrEqual(LIMIT);
        expect(results.filter((result, i) => i % 3 === 2).every((result) => result.held)).toBe(true);
        // Every come-and-go has gone: US and CA are left, and one place.
        expect(await sizeOfSet()).toBe(2);
        await store.releaseMember('set', 'US', first.window);
        expect(await sizeOfSet()).toBe(1);
      });
    });
  });
}
