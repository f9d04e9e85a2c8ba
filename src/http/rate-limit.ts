import type { Clock } from '../clock.js';

/**
 * Counters in fixed windows, behind an interface so a shared store (Redis) can replace the
 * in-process one when the site runs as several processes.
 */
export interface WindowCount {
  count: number;
  /** When this window ends and the count starts again from zero. */
  resetAt: Date;
  /**
   * Names this window of this key, as the store tells windows apart (opaque). A reservation keeps
   * it, so that handing the count back later takes it from this window and never from the next.
   */
  window: string;
}

export interface RateLimitStore {
  /**
   * Adds one to the key's count in its current window (opening a window of windowMs if none). On
   * Redis a count taken back to 0 opens a new window at the next increment; the memory store keeps
   * its window. Either way no hand-back can be waiting for a window whose count is 0.
   */
  increment(key: string, windowMs: number): Promise<WindowCount>;
  /**
   * Takes back one count (a reservation that turned out not to count) from the window `window`
   * names, as the increment that took it reported, and only while that window is still the open
   * one: a count taken just before a window ended is not handed back to the next window (a free
   * attempt there), and nothing is taken once its own window has ended or been reset. The window
   * is required so that no caller can hand a count back to "whatever window is open now".
   *
   * Resolves to the count left in that window once the one was taken back, in the same atomic
   * step, or null when nothing was taken (its window ended or was reset, the count was already 0).
   * Of several holders handing their counts back at once, exactly one sees 0: the last one out,
   * which is how a caller knows that it alone must hand back what the whole group shared.
   */
  decrement(key: string, window: string): Promise<number | null>;
  /** The current window's count, or null if the key has none open. */
  get(key: string): Promise<WindowCount | null>;
  /**
   * Holds `member` in the key's set of distinct members, in one atomic step with the check of the
   * set's size, so that every holder of one member, racing on any instances, gets the same answer.
   * A member already in the set is held once more, whatever the limit; a new one joins only while
   * the set has fewer than `limit` members; otherwise nothing changes and it is not held. The set
   * lives in a window of windowMs opened by the first hold, whose end no later hold moves; a set
   * emptied by its releases ends its window, and the next hold opens a new one (no release can be
   * waiting for the old one: its holders have all released). A key holds members or a count,
   * never both.
   */
  holdMember(key: string, member: string, limit: number, windowMs: number): Promise<MemberHold>;
  /**
   * Takes back one hold of `member` (each hold at most once), in the window `window` names, as the
   * hold reported, and only while that window is still the open one, as `decrement` does. The
   * member leaves the set with its last holder, freeing its place.
   */
  releaseMember(key: string, member: string, window: string): Promise<void>;
  /** Forgets the key, its count or its members. */
  reset(key: string): Promise<void>;
}

export interface MemberHold {
  held: boolean;
  /** Distinct members in the set after this hold (at least the limit, when it was not held). */
  members: number;
  /** When the set's window ends and it starts again empty. */
  resetAt: Date;
  /** Names the set's window, as `WindowCount.window` does: a release needs it. */
  window: string;
}

/** Both stores refuse what Redis could not hold, so that the memory store's tests catch it too. */
export function assertWindowMs(windowMs: number): void {
  if (!Number.isInteger(windowMs) || windowMs <= 0) {
    throw new RangeError(`windowMs must be a positive whole number of milliseconds, not ${windowMs}`);
  }
}

/** Lua reads no "Infinity": an unlimited set is not a set that needs this store. */
export function assertMemberLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a whole number of members, not ${limit}`);
  }
}

const SWEEP_EVERY_CALLS = 1000;

const toWindowCount = (window: { count: number; resetAt: number; id: string }): WindowCount => ({
  count: window.count,
  resetAt: new Date(window.resetAt),
  window: window.id,
});

export function createMemoryRateLimitStore(clock: Clock): RateLimitStore {
  const windows = new Map<string, { count: number; resetAt: number; id: string }>();
  // Each member's number of holders; a set with none left is deleted, as Redis deletes an empty hash.
  const memberSets = new Map<string, { holders: Map<string, number>; resetAt: number; id: string }>();
  let callsSinceSweep = 0;
  // A window's id is its place in the order windows were opened, never its end: a key reset and
  // counted again in the same millisecond gets a new window with the same end.
  let windowsOpened = 0;

  // Expired windows are dropped now and then so that a flood of one-off keys cannot grow the maps forever.
  const sweepNowAndThen = (now: number) => {
    if (++callsSinceSweep < SWEEP_EVERY_CALLS) return;
    callsSinceSweep = 0;
    for (const map of [windows, memberSets]) {
      for (const [key, window] of map) if (window.resetAt <= now) map.delete(key);
    }
  };

  const live = <Window extends { resetAt: number }>(map: Map<string, Window>, key: string, now: number) => {
    const window = map.get(key);
    if (window && window.resetAt <= now) {
      map.delete(key);
      return undefined;
    }
    return window;
  };

  return {
    async increment(key, windowMs) {
      assertWindowMs(windowMs);
      const now = clock.now().getTime();
      sweepNowAndThen(now);
      const window = live(windows, key, now) ?? {
        count: 0,
        resetAt: now + windowMs,
        id: String(++windowsOpened),
      };
      window.count += 1;
      windows.set(key, window);
      return toWindowCount(window);
    },
    async decrement(key, named) {
      const window = live(windows, key, clock.now().getTime());
      if (!window || window.count <= 0 || named !== window.id) return null;
      window.count -= 1;
      return window.count;
    },
    async get(key) {
      const window = live(windows, key, clock.now().getTime());
      return window ? toWindowCount(window) : null;
    },
    async holdMember(key, member, limit, windowMs) {
      assertWindowMs(windowMs);
      assertMemberLimit(limit);
      const now = clock.now().getTime();
      sweepNowAndThen(now);
      const set = live(memberSets, key, now) ?? {
        holders: new Map<string, number>(),
        resetAt: now + windowMs,
        id: String(++windowsOpened),
      };
      const holders = set.holders.get(member);
      const held = holders !== undefined || set.holders.size < limit;
      if (held) {
        set.holders.set(member, (holders ?? 0) + 1);
        memberSets.set(key, set);
      }
      return { held, members: set.holders.size, resetAt: new Date(set.resetAt), window: set.id };
    },
    async releaseMember(key, member, named) {
      const set = live(memberSets, key, clock.now().getTime());
      const holders = set?.holders.get(member);
      if (!set || holders === undefined || named !== set.id) return;
      if (holders > 1) set.holders.set(member, holders - 1);
      else set.holders.delete(member);
      if (set.holders.size === 0) memberSets.delete(key);
    },
    async reset(key) {
      windows.delete(key);
      memberSets.delete(key);
    },
  };
}

/**
 * express-rate-limit's store interface over a RateLimitStore, so the coarse flood guards count in
 * the same place as every other limit: in Redis when several instances run, so a client gets its
 * allowance once, not once per instance. `name` keeps each guard's counters apart.
 */
export function createFloodGuardStore(limits: RateLimitStore, name: string, windowMs: number) {
  const prefix = `flood:${name}:`;
  const keyOf = (key: string) => `${prefix}${key}`;
  let refusal: Error | undefined;
  return {
    localKeys: false,
    // express-rate-limit tells stores apart by their prefix: without one, the two guards (all
    // requests, posts) looked like one store counting a request twice (ERR_ERL_DOUBLE_COUNT).
    prefix,
    async increment(key: string) {
      if (refusal) throw refusal;
      const { count, resetAt } = await limits.increment(keyOf(key), windowMs);
      return { totalHits: count, resetTime: resetAt };
    },
    /**
     * express-rate-limit hands counts back only for skipFailedRequests / skipSuccessfulRequests,
     * and its call names no window (nor which request's count it is): a count handed back could
     * land in a window opened since. So nothing is handed back, and a guard that sets either
     * option is refused: express-rate-limit logs the error at start (it catches what init throws),
     * and every request the guard then counts fails with it (a 500), so no test can miss it,
     * rather than the guard silently counting what it was told to skip.
     */
    init(options: { skipFailedRequests?: boolean; skipSuccessfulRequests?: boolean }) {
      if (options.skipFailedRequests || options.skipSuccessfulRequests) {
        refusal = new Error(
          `flood guard "${name}": skipFailedRequests and skipSuccessfulRequests are not supported (its store hands no count back)`,
        );
        throw refusal;
      }
    },
    async decrement(_key: string) {},
    async resetKey(key: string) {
      await limits.reset(keyOf(key));
    },
  };
}
