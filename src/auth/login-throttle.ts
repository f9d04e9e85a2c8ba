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
  check(username: string, ip: string): Promise<ThrottleDecision>;
  recordFailure(username: string, ip: string): Promise<void>;
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
  return {
    async check(username, ip) {
      const counts = await Promise.all([limits.get(usernameKey(username)), limits.get(addressKey(ip))]);
      const blocking = counts.filter((count) => count !== null && count.count >= rules.maxFailures);
      if (blocking.length === 0) return { allowed: true };
      const until = Math.max(...blocking.map((count) => count!.resetAt.getTime()));
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((until - now()) / 1000)) };
    },
    async recordFailure(username, ip) {
      await Promise.all([
        limits.increment(usernameKey(username), rules.windowMs),
        limits.increment(addressKey(ip), rules.windowMs),
      ]);
    },
    async recordSuccess(username) {
      await limits.reset(usernameKey(username));
    },
  };
}
