import { beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_LOGIN_THROTTLE,
  createLoginThrottle,
  type LoginAttempt,
  type LoginThrottle,
} from '../../src/auth/login-throttle.js';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';

const from = (clientKey: string, username = 'alice', knownDevice = false): LoginAttempt => ({
  username,
  clientKey,
  knownDevice,
});

describe('the login throttle', () => {
  let clock: TestClock;
  let throttle: LoginThrottle;
  beforeEach(() => {
    clock = createTestClock();
    throttle = createLoginThrottle({ limits: createMemoryRateLimitStore(clock), clock });
  });

  /** `times` failed passwords: reserved and never handed back. */
  async function fail(attempt: LoginAttempt, times: number) {
    for (let i = 0; i < times; i += 1) {
      expect(await throttle.reserveAttempt(attempt)).toMatchObject({ allowed: true });
    }
  }

  /** 100 failures on alice from 10 strangers, 10 each: the per-username limit is reached. */
  async function strangersFailOnAlice() {
    for (let i = 1; i <= 10; i += 1) await fail(from(`203.0.113.${i}`), 10);
  }

  it('refuses the 11th failure from one client on one username, for 15 minutes', async () => {
    await fail(from('198.51.100.7'), 10);
    expect(await throttle.reserveAttempt(from('198.51.100.7'))).toEqual({
      allowed: false,
      reason: 'failures',
      retryAfterSeconds: 15 * 60,
    });
    clock.advanceMinutes(15);
    expect(await throttle.reserveAttempt(from('198.51.100.7'))).toMatchObject({ allowed: true });
  });

  it('lets other clients try a username that one client has exhausted', async () => {
    // Threat: a stranger who knows a username locks its owner out.
    await fail(from('198.51.100.7'), 10);
    expect(await throttle.reserveAttempt(from('192.0.2.10'))).toMatchObject({ allowed: true });
  });

  it('refuses a client after 10 failures across usernames', async () => {
    for (let i = 0; i < 10; i += 1) await fail(from('198.51.100.7', `user${i}`), 1);
    expect(await throttle.reserveAttempt(from('198.51.100.7', 'someone-else'))).toMatchObject({
      allowed: false,
      reason: 'failures',
    });
  });

  /** Reserves an attempt that must be allowed, and returns what to hand back. */
  async function reserve(attempt: LoginAttempt) {
    const decision = await throttle.reserveAttempt(attempt);
    if (!decision.allowed) throw new Error(`expected ${JSON.stringify(attempt)} to be allowed`);
    return decision.reservation;
  }

  it('counts nothing for an attempt whose password was right', async () => {
    for (let i = 0; i < 30; i += 1) {
      await throttle.releaseAttempt(await reserve(from('192.0.2.10')));
    }
    await fail(from('192.0.2.10'), 10);
  });

  describe('an attempt handed back late', () => {
    // Threat: a password check that waits in the queue across the end of its window, then is
    // answered busy, handing its count to the next window: one guess more there than the limit.

    it('takes nothing from the next window once its own has ended', async () => {
      const late = await reserve(from('198.51.100.7'));
      clock.advanceMinutes(15);
      await fail(from('198.51.100.7'), 10);
      await throttle.releaseAttempt(late);
      expect(await throttle.reserveAttempt(from('198.51.100.7'))).toMatchObject({
        allowed: false,
        reason: 'failures',
      });
    });

    it('still takes its count back from its own window while that is open', async () => {
      const late = await reserve(from('198.51.100.7'));
      clock.advanceMinutes(14);
      await fail(from('198.51.100.7'), 9);
      await throttle.releaseAttempt(late);
      await fail(from('198.51.100.7'), 1);
      expect(await throttle.reserveAttempt(from('198.51.100.7'))).toMatchObject({ allowed: false });
    });

    it("takes nothing from the counts an admin's unlock started afresh", async () => {
      const late = await reserve(from('198.51.100.7', 'alice', true));
      await throttle.forgiveAccount('alice');
      await fail(from('198.51.100.7', 'alice', true), 10);
      await throttle.releaseAttempt(late);
      expect(await throttle.reserveAttempt(from('198.51.100.7', 'alice', true))).toMatchObject({
        allowed: false,
        reason: 'failures',
      });
    });
  });

  describe('past 100 failures on a username', () => {
    // Threat: many addresses guessing one account together, each far below its own limits.

    /** The next attempt from a fresh client: checked (true) or told to wait for the pace (seconds). */
    let fresh = 0;
    async function freshClientTries(): Promise<true | number> {
      fresh += 1;
      const decision = await throttle.reserveAttempt(from(`192.0.2.${fresh}`));
      if (decision.allowed) return true;
      expect(decision.reason).toBe('paced');
      return decision.retryAfterSeconds;
    }

    it('checks one attempt per second from all clients together, and refuses the rest with the wait', async () => {
      await strangersFailOnAlice();
      expect(await freshClientTries()).toBe(true);
      expect(await freshClientTries()).toBe(1);
      expect(await freshClientTries()).toBe(1);
      clock.advance(1000);
      expect(await freshClientTries()).toBe(true);
    });

    it('lets exactly one of a burst of parallel attempts from different clients be checked', async () => {
      await strangersFailOnAlice();
      const decisions = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          throttle.reserveAttempt(from(`2001:db8:aa:${i.toString(16)}::/64`)),
        ),
      );
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(1);
      expect(decisions.filter((decision) => !decision.allowed && decision.reason === 'paced')).toHaveLength(
        299,
      );
    });

    it('does not count a paced refusal as a failure, nor against the client', async () => {
      await strangersFailOnAlice();
      expect(await freshClientTries()).toBe(true); // the second's one check, taken by 192.0.2.1
      for (let i = 0; i < 20; i += 1) {
        expect(await throttle.reserveAttempt(from('198.51.100.7'))).toMatchObject({ reason: 'paced' });
      }
      clock.advance(1000);
      // The 20 refusals left no trace: neither this client's count nor the username's interval grew.
      expect(await throttle.reserveAttempt(from('198.51.100.7'))).toMatchObject({ allowed: true });
      clock.advance(1000);
      expect(await freshClientTries()).toBe(true);
    });

    it('doubles the interval every 10 failures past the limit, up to 60 s', async () => {
      await strangersFailOnAlice();
      const intervals: number[] = [];
      for (let failures = 0; failures < 80; failures += 1) {
        expect(await freshClientTries()).toBe(true); // checked, and failed: its reservation stays
        const wait = await freshClientTries();
        if (typeof wait !== 'number') throw new Error('a second attempt got the same interval');
        if (failures % 10 === 0) intervals.push(wait);
        clock.advance(wait * 1000);
      }
      expect(intervals).toEqual([1, 2, 4, 8, 16, 32, 60, 60]);
    });

    it('refuses a client that has failed on the username, without taking the check', async () => {
      await strangersFailOnAlice();
      await fail(from('192.0.2.66'), 1);
      clock.advance(1000);
      expect(await throttle.reserveAttempt(from('192.0.2.66'))).toMatchObject({
        allowed: false,
        reason: 'failures',
      });
      // Refused attempts are handed back, so they take neither the check nor a place in the count.
      expect(await throttle.reserveAttempt(from('192.0.2.67'))).toMatchObject({ allowed: true });
    });

    it('lets only one of a burst of parallel attempts from one clean client through', async () => {
      // Threat: a fresh address firing many guesses at once, all before the first one has failed.
      await strangersFailOnAlice();
      const decisions = await Promise.all(
        Array.from({ length: 8 }, () => throttle.reserveAttempt(from('192.0.2.10'))),
      );
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(1);
    });

    it('neither counts nor paces a browser known to the account', async () => {
      await strangersFailOnAlice();
      expect(await freshClientTries()).toBe(true); // the one check of this second is taken
      expect(await throttle.reserveAttempt(from('192.0.2.200', 'alice', true))).toMatchObject({
        allowed: true,
      });
      expect(await throttle.reserveAttempt(from('192.0.2.201', 'alice', true))).toMatchObject({
        allowed: true,
      });
    });

    it('ends when the username window (one hour) ends', async () => {
      await strangersFailOnAlice();
      clock.advanceMinutes(60);
      expect(await freshClientTries()).toBe(true);
      expect(await freshClientTries()).toBe(true);
    });

    it("forgives a client's failures on the username after a full login, but not the username's count", async () => {
      await strangersFailOnAlice();
      await fail(from('192.0.2.10'), 1);
      clock.advance(1000);
      expect(await throttle.reserveAttempt(from('192.0.2.10'))).toMatchObject({ reason: 'failures' });
      await throttle.recordSuccess('Alice', '192.0.2.10');
      // Her own failure is forgiven (so she is paced, not refused); the strangers' 101 still count.
      expect(await throttle.reserveAttempt(from('192.0.2.10'))).toMatchObject({ allowed: true });
      expect(await throttle.reserveAttempt(from('192.0.2.11'))).toMatchObject({ reason: 'paced' });
    });

    it('counts a username the same whatever its case or width', async () => {
      const spellings = ['alice', 'ALICE', 'ａｌｉｃｅ'];
      for (let i = 1; i <= 10; i += 1) await fail(from(`203.0.113.${i}`, spellings[i % 3]), 10);
      expect(await throttle.reserveAttempt(from('192.0.2.10', 'Alice'))).toMatchObject({ allowed: true });
      expect(await throttle.reserveAttempt(from('192.0.2.11', 'ａｌｉｃｅ'))).toMatchObject({
        reason: 'paced',
      });
    });
  });

  describe('a browser known to the account', () => {
    // Threat: a stranger sharing the owner's address (a carrier's NAT, an office, an IPv6 /64)
    // uses up that address's budget and locks her out along with everyone else there.

    it('is not held by the per-client count that strangers at its address used up', async () => {
      for (let i = 0; i < 10; i += 1) await fail(from('100.64.0.1', `made-up-${i}`), 1);
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'bob'))).toMatchObject({ allowed: false });
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'alice', true))).toMatchObject({
        allowed: true,
      });
    });

    it("is not held by strangers' failures on its own username from its address", async () => {
      await fail(from('100.64.0.1', 'alice'), 10);
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'alice', true))).toMatchObject({
        allowed: true,
      });
    });

    it('still gets only 10 failures per client, and they do not count against the client', async () => {
      await fail(from('100.64.0.1', 'alice', true), 10);
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'alice', true))).toMatchObject({
        allowed: false,
        reason: 'failures',
      });
      // Its failures used up its own budget only: the address and the account stay open to others.
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'bob'))).toMatchObject({ allowed: true });
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'alice'))).toMatchObject({ allowed: true });
    });

    it('has its failures forgiven by a full login from that client', async () => {
      await fail(from('100.64.0.1', 'alice', true), 10);
      await throttle.recordSuccess('alice', '100.64.0.1');
      expect(await throttle.reserveAttempt(from('100.64.0.1', 'alice', true))).toMatchObject({
        allowed: true,
      });
    });
  });

  describe("an admin's unlock (forgiveAccount)", () => {
    it("forgives the account's counts from every client, and ends its pacing", async () => {
      await fail(from('198.51.100.7', 'alice', true), 10);
      await strangersFailOnAlice();
      expect(await throttle.reserveAttempt(from('198.51.100.7', 'alice', true))).toMatchObject({
        allowed: false,
      });
      expect(await throttle.reserveAttempt(from('192.0.2.99'))).toMatchObject({ allowed: true });
      expect(await throttle.reserveAttempt(from('192.0.2.98'))).toMatchObject({
        allowed: false,
        reason: 'paced',
      });

      await throttle.forgiveAccount('ALICE');
      expect(await throttle.reserveAttempt(from('198.51.100.7', 'alice', true))).toMatchObject({
        allowed: true,
      });
      expect(await throttle.reserveAttempt(from('192.0.2.98'))).toMatchObject({ allowed: true });
      expect(await throttle.reserveAttempt(from('192.0.2.97'))).toMatchObject({ allowed: true });
      // And counts afresh: ten more failures from one client refuse it again.
      await fail(from('192.0.2.50'), 10);
      expect(await throttle.reserveAttempt(from('192.0.2.50'))).toMatchObject({ allowed: false });
    });

    it("leaves other accounts' counts, and a client's count across accounts, as they were", async () => {
      await fail(from('198.51.100.7', 'bob'), 10);
      for (let i = 0; i < 10; i += 1) await fail(from('203.0.113.200', `made-up-${i}`), 1);
      await throttle.forgiveAccount('alice');
      expect(await throttle.reserveAttempt(from('198.51.100.7', 'bob'))).toMatchObject({ allowed: false });
      // That address's count is its own, not alice's: it still runs out its window.
      expect(await throttle.reserveAttempt(from('203.0.113.200', 'alice'))).toMatchObject({ allowed: false });
    });

    it('keeps counting after a login that follows the unlock (the new counts are the ones reset)', async () => {
      await throttle.forgiveAccount('alice');
      await fail(from('198.51.100.7', 'alice', true), 10);
      await throttle.recordSuccess('alice', '198.51.100.7');
      expect(await throttle.reserveAttempt(from('198.51.100.7', 'alice', true))).toMatchObject({
        allowed: true,
      });
    });
  });
});
