import type { RateLimitStore } from '../http/rate-limit.js';

/**
 * Failed passwords are counted per username and per client address in fixed windows. Past the
 * limit, logins are refused until the window ends: a pause, never a permanent lock, so an attacker
 * cannot lock the real owner out for good.
 */
export interface LoginThrottleRules {
  maxFailures: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleRules = { maxFailures: 10, windowMs: 15 * 60_000 };

export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface LoginThrottle {
  /**
   * Counts this attempt as a failure up front, before the (slow) password check, so that
   * parallel guesses cannot all pass the check while the first is still hashing.
   */
  reserveAttempt(username: string, ip: string): Promise<ThrottleDecision>;
  /** The password was right: the reserved failure is handed back. */
  releaseAttempt(username: string, ip: string): Promise<void>;
  /** After a full login, the username's failures are forgiven (the address's are not). */
  recordSuccess(username: string): Promise<void>;
}

const usernameKey = (username: string) => `login:user:${username.normalize('NFKC').toLowerCase()}`;
const addressKey = (ip: string) => `login:ip:${ip}`;

export function createLoginThrottle(
  limits: RateLimitStore,
  now: () => number,
  rules: LoginThrottleRules = DEFAULT_LOGIN_THROTTLE,
): LoginThrottle {
  const keysFor = (username: string, ip: string) => [usernameKey(username), addressKey(ip)];
  const release = (keys: string[]) => Promise.all(keys.map((key) => limits.decrement(key)));

  return {
    async reserveAttempt(username, ip) {
      const keys = keysFor(username, ip);
      const counts = await Promise.all(keys.map((key) => limits.increment(key, rules.windowMs)));
      const blocking = counts.filter((count) => count.count > rules.maxFailures);
      if (blocking.length === 0) return { allowed: true };
      // A refused attempt is not a guess: give the reservation back so the window is not stretched.
      await release(keys);
      const until = Math.max(...blocking.map((count) => count.resetAt.getTime()));
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((until - now()) / 1000)) };
    },
    async releaseAttempt(username, ip) {
      await release(keysFor(username, ip));
    },
    async recordSuccess(username) {
      await limits.reset(usernameKey(username));
    },
  };
}
