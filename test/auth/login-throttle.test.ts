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
      retryAfterSeconds: 15 * 60,
    });
    clock.advanceMinutes(15);
    expect(await throttle.reserveAttempt(from('198.51.100.7'))).toEqual({ allowed: true, delayMs: 0 });
  });

  it('lets other clients try a username that one client has exhausted', async () => {
    // Threat: a stranger who knows a username locks its owner out.
    await fail(from('198.51.100.7'), 10);
    expect(await throttle.reserveAttempt(from('192.0.2.10'))).toEqual({ allowed: true, delayMs: 0 });
  });

  it('refuses a client after 10 failures across usernames', async () => {
    for (let i = 0; i < 10; i += 1) await fail(from('198.51.100.7', `user${i}`), 1);
    expect(await throttle.reserveAttempt(from('198.51.100.7', 'someone-else'))).toMatchObject({
      allowed: false,
    });
  });

  it('counts nothing for an attempt whose password was right', async () => {
    for (let i = 0; i < 30; i += 1) {
      const attempt = from('192.0.2.10');
      await throttle.reserveAttempt(attempt);
      await throttle.releaseAttempt(attempt);
    }
    await fail(from('192.0.2.10'), 10);
  });

  it('slows down clean clients past 100 failures on a username, with a growing delay capped at 10 s', async () => {
    await strangersFailOnAlice();
    const delays: number[] = [];
    for (let i = 1; i <= 7; i += 1) {
      const decision = await throttle.reserveAttempt(from(`192.0.2.${i}`));
      if (!decision.allowed) throw new Error('a clean client was refused');
      delays.push(decision.delayMs);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(DEFAULT_LOGIN_THROTTLE.maxDelayMs).toBe(10_000);
  });

  it('refuses a client that has failed on the username once it is under attack', async () => {
    await strangersFailOnAlice();
    await fail(from('192.0.2.66'), 1);
    const decision = await throttle.reserveAttempt(from('192.0.2.66'));
    expect(decision).toMatchObject({ allowed: false });
    // Refused attempts are handed back, so they neither grow the delay nor stretch any window.
    expect(await throttle.reserveAttempt(from('192.0.2.67'))).toEqual({ allowed: true, delayMs: 2000 });
  });

  it('lets only one of a burst of parallel attempts from a clean client through once the username is under attack', async () => {
    // Threat: a fresh address firing many guesses at once, all before the first one has failed.
    await strangersFailOnAlice();
    const decisions = await Promise.all(
      Array.from({ length: 8 }, () => throttle.reserveAttempt(from('192.0.2.10'))),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(1);
  });

  it('neither counts nor slows a browser known to the account', async () => {
    await strangersFailOnAlice();
    expect(await throttle.reserveAttempt(from('192.0.2.10', 'alice', true))).toEqual({
      allowed: true,
      delayMs: 0,
    });
    // ...but its own client limits still hold.
    await fail(from('192.0.2.20', 'alice', true), 10);
    expect(await throttle.reserveAttempt(from('192.0.2.20', 'alice', true))).toMatchObject({
      allowed: false,
    });
  });

  it('ends the slow-down when the username window (one hour) ends', async () => {
    await strangersFailOnAlice();
    clock.advanceMinutes(60);
    expect(await throttle.reserveAttempt(from('192.0.2.10'))).toEqual({ allowed: true, delayMs: 0 });
  });

  it("forgives a client's failures on the username after a full login, but not the username's count", async () => {
    await strangersFailOnAlice();
    await fail(from('192.0.2.10'), 1);
    expect(await throttle.reserveAttempt(from('192.0.2.10'))).toMatchObject({ allowed: false });
    await throttle.recordSuccess('Alice', '192.0.2.10');
    // Her own failure is forgiven (so she is slowed, not refused); the strangers' 100 still count.
    expect(await throttle.reserveAttempt(from('192.0.2.10'))).toEqual({ allowed: true, delayMs: 2000 });
  });

  it('counts a username the same whatever its case or width', async () => {
    const spellings = ['alice', 'ALICE', 'ａｌｉｃｅ'];
    for (let i = 1; i <= 10; i += 1) await fail(from(`203.0.113.${i}`, spellings[i % 3]), 10);
    expect(await throttle.reserveAttempt(from('192.0.2.10', 'Alice'))).toEqual({
      allowed: true,
      delayMs: 1000,
    });
  });
});
