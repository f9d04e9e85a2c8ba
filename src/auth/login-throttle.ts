import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import { usernameKeyOf } from '../users/username.js';

/**
 * Failed passwords are counted in fixed windows:
 *
 * - per (username, client) and per client (an IPv4 address or an IPv6 /64): past the limit the
 *   client is refused until the window ends. This stops one client guessing one account, and one
 *   client guessing across many accounts.
 * - per username from everywhere, with a much higher limit (NIST's 100). Past it the username is
 *   under attack: a client that has already failed on it is refused, and every other attempt is
 *   *paced* across all clients, one password check per interval (1 s, doubling every 10 failures
 *   past the limit, at most 60 s). An attempt that finds the interval's one check taken is refused
 *   with the wait, unchecked and uncounted. A per-request delay would not do: 300 guesses from 300
 *   addresses would all wait in parallel and all be checked. Strangers who know a username can make
 *   its owner wait for a free check, never lock her out with a count of her own.
 * - A browser that completed a login for the account before (the known-device cookie, which names
 *   one account and cannot be forged) is held by neither the per-client count nor the username's:
 *   its attempts count only in their own (username, client) pair, apart from the attempts without
 *   the cookie. So a stranger sharing the owner's address (a carrier's NAT, an office, one IPv6 /64)
 *   cannot use up her budget, whatever names he guesses.
 *
 * Nothing here is ever a permanent lock.
 */
export interface LoginThrottleRules {
  /** Failures per (username, client) and per client before that client is refused. */
  maxFailures: number;
  windowMs: number;
  /** Failures per username from everywhere before its attempts are paced. */
  usernameMaxFailures: number;
  usernameWindowMs: number;
  /** Past the username limit: one check per interval, starting here... */
  firstPaceIntervalMs: number;
  /** ...doubling after this many more failures... */
  failuresPerPaceDoubling: number;
  /** ...up to this. */
  maxPaceIntervalMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleRules = {
  maxFailures: 10,
  windowMs: 15 * 60_000,
  usernameMaxFailures: 100,
  usernameWindowMs: 60 * 60_000,
  firstPaceIntervalMs: 1000,
  failuresPerPaceDoubling: 10,
  maxPaceIntervalMs: 60_000,
};

export interface LoginAttempt {
  username: string;
  /** clientKeyOf(the client's address): an IPv4 address or an IPv6 /64. */
  clientKey: string;
  /** This browser carries a valid known-device cookie for the account of this username. */
  knownDevice: boolean;
}

/**
 * What an allowed attempt counted, and in which window of each key. Handing it back undoes exactly
 * those counts, never the next window's (see releaseAttempt).
 */
export interface LoginReservation {
  readonly counted: ReadonlyArray<{ readonly key: string; readonly window: string }>;
}

export type ThrottleDecision =
  | { allowed: true; reservation: LoginReservation }
  /**
   * 'failures': this client failed too often (on this username, or anywhere).
   * 'paced': the username is under attack and its one check of this interval is taken.
   */
  | { allowed: false; reason: 'failures' | 'paced'; retryAfterSeconds: number };

export interface LoginThrottle {
  /**
   * Counts this attempt as a failure in its buckets up front, before the (slow) password check,
   * so that parallel guesses cannot all pass while the first is still hashing.
   */
  reserveAttempt(attempt: LoginAttempt): Promise<ThrottleDecision>;
  /**
   * The attempt was not a guess after all (the password was right, or it was never checked): its
   * reserved failures are handed back. A count whose window has ended since (or was forgiven) is
   * left alone: handed to whatever window is open now, it would be a free attempt there.
   */
  releaseAttempt(reservation: LoginReservation): Promise<void>;
  /** After a full login, this client's failures on the username are forgiven (nothing else is). */
  recordSuccess(username: string, clientKey: string): Promise<void>;
  /**
   * An admin's unlock: every count of this username is forgiven, from every client (its owner's
   * among them, whatever her address), and its pacing ends. A client's own count across
   * usernames stays: it is not this account's.
   */
  forgiveAccount(username: string): Promise<void>;
}

/**
 * The (username, client) counts cannot be listed to be reset one by one (the store has only keys
 * it is told), so they carry the username's *epoch*: an admin's unlock starts a new one, and the
 * counts of the old one are no longer read. The epoch is itself a counter that lasts a day: when
 * it lapses the keys go back to epoch 0, whose counts ended long before. (Counts of a later epoch
 * still open at that moment are forgiven with it: one more forgiveness, a day after an unlock.)
 */
const EPOCH_LIFETIME_MS = 24 * 60 * 60_000;

// JSON keeps the parts apart: a username may contain any character, an IPv6 key has colons. Epoch
// 0 is left out, so the keys of a username never unlocked are those from before epochs existed.
const pairParts = (username: string, clientKey: string, epoch: number) =>
  JSON.stringify(
    epoch === 0 ? [usernameKeyOf(username), clientKey] : [usernameKeyOf(username), clientKey, epoch],
  );
const pairKey = (username: string, clientKey: string, epoch: number) =>
  `login:pair:${pairParts(username, clientKey, epoch)}`;
const knownDevicePairKey = (username: string, clientKey: string, epoch: number) =>
  `login:known-pair:${pairParts(username, clientKey, epoch)}`;
const clientOnlyKey = (clientKey: string) => `login:client:${clientKey}`;
const usernameKey = (username: string) => `login:user:${usernameKeyOf(username)}`;
const pacedKey = (username: string) => `login:paced:${usernameKeyOf(username)}`;
const epochKey = (username: string) => `login:epoch:${usernameKeyOf(username)}`;

/** The keys an attempt counts in: a known device in its own pair only, any other in all three. */
function keysOf(attempt: LoginAttempt, epoch: number) {
  return attempt.knownDevice
    ? { pair: knownDevicePairKey(attempt.username, attempt.clientKey, epoch) }
    : {
        pair: pairKey(attempt.username, attempt.clientKey, epoch),
        client: clientOnlyKey(attempt.clientKey),
        username: usernameKey(attempt.username),
      };
}

export function createLoginThrottle(deps: {
  limits: RateLimitStore;
  clock: Clock;
  rules?: LoginThrottleRules;
}): LoginThrottle {
  const { limits, clock } = deps;
  const rules = deps.rules ?? DEFAULT_LOGIN_THROTTLE;

  const epochOf = async (username: string) => (await limits.get(epochKey(username)))?.count ?? 0;
  // Race: the hand-back may come after the window the count was taken in has ended (a password
  // check that waited its turn near the boundary). Taking it from the key's window of *now* would
  // give that window a free attempt, so each count goes back to its own window or nowhere. The
  // keys are the ones counted, too: an unlock in between starts a new epoch with new pair keys.
  const release = async ({ counted }: LoginReservation) => {
    await Promise.all(counted.map(({ key, window }) => limits.decrement(key, window)));
  };
  const secondsUntil = (time: Date) =>
    Math.max(1, Math.ceil((time.getTime() - clock.now().getTime()) / 1000));
  const refuse = async (
    reservation: LoginReservation,
    reason: 'failures' | 'paced',
    until: Date,
  ): Promise<ThrottleDecision> => {
    // A refused attempt is not a guess: give the reservation back so the windows are not stretched.
    await release(reservation);
    return { allowed: false, reason, retryAfterSeconds: secondsUntil(until) };
  };
  const paceIntervalMs = (failuresPastLimit: number) => {
    const doublings = Math.floor((failuresPastLimit - 1) / rules.failuresPerPaceDoubling);
    return Math.min(rules.maxPaceIntervalMs, rules.firstPaceIntervalMs * 2 ** Math.min(30, doublings));
  };

  return {
    async reserveAttempt(attempt) {
      const keys = keysOf(attempt, await epochOf(attempt.username));
      const counted: Array<{ key: string; window: string }> = [];
      const countIn = async (key: string, windowMs: number) => {
        const result = await limits.increment(key, windowMs);
        counted.push({ key, window: result.window });
        return result;
      };
      const [pair, client, username] = await Promise.all([
        countIn(keys.pair, rules.windowMs),
        keys.client ? countIn(keys.client, rules.windowMs) : null,
        keys.username ? countIn(keys.username, rules.usernameWindowMs) : null,
      ]);
      const reservation: LoginReservation = { counted };
      const blocking = [pair, client].filter((count) => count !== null && count.count > rules.maxFailures);
      if (blocking.length > 0) {
        const latest = Math.max(...blocking.map((count) => count!.resetAt.getTime()));
        return refuse(reservation, 'failures', new Date(latest));
      }

      // A known device has no username count: the per-username limit does not hold it.
      if (!username || username.count <= rules.usernameMaxFailures) return { allowed: true, reservation };
      // The username is under attack. A client with another failure (or a guess still in flight)
      // on it is one of the guessers: refused until its own count or the username's window ends.
      if (pair.count > 1) {
        const until = Math.min(pair.resetAt.getTime(), username.resetAt.getTime());
        return refuse(reservation, 'failures', new Date(until));
      }
      // Any other client may be the owner, or one of a thousand addresses guessing together: all of
      // them share one check per interval. The slot is taken by an atomic increment in the shared
      // store before the password is hashed, so of a burst of parallel attempts exactly one gets
      // it. Counts still in flight make the interval longer for a moment, never shorter.
      const slot = await limits.increment(
        pacedKey(attempt.username),
        paceIntervalMs(username.count - rules.usernameMaxFailures),
      );
      if (slot.count > 1) return refuse(reservation, 'paced', slot.resetAt);
      return { allowed: true, reservation };
    },
    async releaseAttempt(reservation) {
      await release(reservation);
    },
    async recordSuccess(username, clientKey) {
      // The username's own count stays: forgiving it on the owner's login would hand the strangers
      // still guessing a fresh 100 full-speed attempts.
      const epoch = await epochOf(username);
      await Promise.all([
        limits.reset(pairKey(username, clientKey, epoch)),
        limits.reset(knownDevicePairKey(username, clientKey, epoch)),
      ]);
    },
    async forgiveAccount(username) {
      await limits.increment(epochKey(username), EPOCH_LIFETIME_MS);
      await Promise.all([limits.reset(usernameKey(username)), limits.reset(pacedKey(username))]);
    },
  };
}
