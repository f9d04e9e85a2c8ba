import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { usernameKeyOf } from '../users/username.js';

/**
 * Failed passwords are counted in fixed windows, three ways:
 *
 * - per (username, client) and per client (an IPv4 address or an IPv6 /64): past the limit the
 *   client is refused until the window ends. This stops one client guessing one account, and one
 *   client guessing across many accounts.
 * - per username from everywhere, with a much higher limit (NIST's 100), that slows down rather
 *   than blocks: past it, a client that has already failed on this username is refused, and any
 *   other client waits a growing delay and is then checked as usual. Strangers who know a
 *   username can therefore slow its owner down, never lock them out. A browser that completed a
 *   login for the account before (the known-device cookie) is not held by this limit at all.
 *
 * Nothing here is ever a permanent lock.
 */
export interface LoginThrottleRules {
  /** Failures per (username, client) and per client before that client is refused. */
  maxFailures: number;
  windowMs: number;
  /** Failures per username from everywhere before attempts are slowed down. */
  usernameMaxFailures: number;
  usernameWindowMs: number;
  /** The delay of the first attempt past the username limit; it doubles with each one after. */
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleRules = {
  maxFailures: 10,
  windowMs: 15 * 60_000,
  usernameMaxFailures: 100,
  usernameWindowMs: 60 * 60_000,
  firstDelayMs: 1000,
  maxDelayMs: 10_000,
};

export interface LoginAttempt {
  username: string;
  /** clientKeyOf(the client's address): an IPv4 address or an IPv6 /64. */
  clientKey: string;
  /** This browser carries a valid known-device cookie for the account of this username. */
  knownDevice: boolean;
}

export type ThrottleDecision =
  /** Go ahead, after waiting delayMs (0 unless the username is under attack). */
  { allowed: true; delayMs: number } | { allowed: false; retryAfterSeconds: number };

export interface LoginThrottle {
  /**
   * Counts this attempt as a failure in every bucket up front, before the delay and the (slow)
   * password check, so that parallel guesses cannot all pass while the first is still hashing.
   */
  reserveAttempt(attempt: LoginAttempt): Promise<ThrottleDecision>;
  /** The password was right: the reserved failures are handed back (pass the same attempt). */
  releaseAttempt(attempt: LoginAttempt): Promise<void>;
  /** After a full login, this client's failures on the username are forgiven (nothing else is). */
  recordSuccess(username: string, clientKey: string): Promise<void>;
}

// JSON keeps the two parts apart: a username may contain any character, an IPv6 key has colons.
const pairKey = (username: string, clientKey: string) =>
  `login:pair:${JSON.stringify([usernameKeyOf(username), clientKey])}`;
const clientOnlyKey = (clientKey: string) => `login:client:${clientKey}`;
const usernameKey = (username: string) => `login:user:${usernameKeyOf(username)}`;

export function createLoginThrottle(deps: {
  limits: RateLimitStore;
  clock: Clock;
  rules?: LoginThrottleRules;
}): LoginThrottle {
  const { limits, clock } = deps;
  const rules = deps.rules ?? DEFAULT_LOGIN_THROTTLE;

  const release = (attempt: LoginAttempt) =>
    Promise.all([
      limits.decrement(pairKey(attempt.username, attempt.clientKey)),
      limits.decrement(clientOnlyKey(attempt.clientKey)),
      attempt.knownDevice ? undefined : limits.decrement(usernameKey(attempt.username)),
    ]);
  const secondsUntil = (time: number) => Math.max(1, Math.ceil((time - clock.now().getTime()) / 1000));
  const refuse = async (attempt: LoginAttempt, until: number): Promise<ThrottleDecision> => {
    // A refused attempt is not a guess: give the reservation back so the windows are not stretched.
    await release(attempt);
    return { allowed: false, retryAfterSeconds: secondsUntil(until) };
  };

  return {
    async reserveAttempt(attempt) {
      const [pair, client, username] = await Promise.all([
        limits.increment(pairKey(attempt.username, attempt.clientKey), rules.windowMs),
        limits.increment(clientOnlyKey(attempt.clientKey), rules.windowMs),
        attempt.knownDevice ? null : limits.increment(usernameKey(attempt.username), rules.usernameWindowMs),
      ]);
      const blocking = [pair, client].filter((count) => count.count > rules.maxFailures);
      if (blocking.length > 0) {
        return refuse(attempt, Math.max(...blocking.map((count) => count.resetAt.getTime())));
      }

      // A known device has no username count: the per-username limit does not hold it.
      if (!username || username.count <= rules.usernameMaxFailures) return { allowed: true, delayMs: 0 };
      const beyondUsernameLimit = username.count - rules.usernameMaxFailures;
      // The username is under attack. A client with another failure (or a guess still in flight)
      // on it is one of the guessers: refused until its own count or the username's window ends.
      if (pair.count > 1) {
        return refuse(attempt, Math.min(pair.resetAt.getTime(), username.resetAt.getTime()));
      }
      // A client with a clean record may be the owner: never refused, only slowed down. The
      // reservations stay taken during the delay, so a burst of parallel attempts still counts.
      const delayMs = Math.min(
        rules.maxDelayMs,
        rules.firstDelayMs * 2 ** Math.min(30, beyondUsernameLimit - 1),
      );
      return { allowed: true, delayMs };
    },
    async releaseAttempt(attempt) {
      await release(attempt);
    },
    async recordSuccess(username, clientKey) {
      // The username's own count stays: forgiving it on the owner's login would hand the strangers
      // still guessing a fresh 100 full-speed attempts.
      await limits.reset(pairKey(username, clientKey));
    },
  };
}
