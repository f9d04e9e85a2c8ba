import session from 'express-session';
import type { RetiringSessionStore } from '../../http/session-store.js';
import { StoreUnavailableError } from '../errors.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * express-session store shared by every instance: a session started on one is read by any other.
 * It keeps the promise of the SQLite store (src/http/session-store.ts): a destroyed id leaves a
 * tombstone until the session's own expiry, at least TOMBSTONE_MIN_LIFETIME_MS, and `set` never
 * writes a tombstoned id. Race it closes: a request still waiting on a code provider when the
 * person logs out (on this instance or another) would otherwise save the session back when it
 * ends, and the logged-out cookie would work again.
 *
 * Our own small store rather than connect-redis: of its four methods, `set` has to become a
 * conditional write, `destroy` has to leave a tombstone and `retireSession` does not exist there,
 * so only `get` would be left; and every call here goes through the stores' deadline and becomes
 * StoreUnavailableError (callRedis), which connect-redis, calling the client directly, does not do.
 *
 * Keys, under the store's prefix:
 *   session:<sid>        the session as JSON; its expiry is the session's (the cookie's) expiry
 *   session-ended:<sid>  the tombstone: no data, only a lifetime
 *
 * Time: a lifetime is "the cookie's expiry minus the app's now", handed to Redis as a duration;
 * Redis then counts it down by its own clock (see docs/stores.md).
 */

/** As the SQLite store: a session saved without an expiry (express-session always gives one) lives this long. */
const FALLBACK_TTL_MS = 30 * 60_000;
/**
 * As the SQLite store: far longer than any request can still be running (each provider call has
 * a deadline of seconds), so no late save outlives the tombstone.
 */
const TOMBSTONE_MIN_LIFETIME_MS = 30 * 60_000;

// Conditional on no tombstone, in one step: a retire from another instance cannot slip between
// the check and the write. A session whose expiry has passed is not written.
const SAVE = defineLuaScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local lifetime = tonumber(ARGV[2])
if lifetime <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', lifetime)
return 1
`);

// PEXPIRE never creates a key, so a late touch cannot bring a destroyed session back either.
const TOUCH = defineLuaScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[1])
`);

// Only the first call for an id finds no tombstone: it reports the id live (1). The tombstone
// lasts as long as the session had left, and never less than the minimum.
const RETIRE = defineLuaScript(`
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local keep = tonumber(ARGV[1])
if left > keep then keep = left end
redis.call('SET', KEYS[2], '1', 'PX', keep)
return 1
`);

/** Hands a promise's outcome to an express-session callback, which expects (err) or (null, result). */
function answer<T>(pending: Promise<T>, callback: ((err: unknown, result?: T) => void) | undefined): void {
  pending.then(
    (result) => callback?.(null, result),
    (error: unknown) => callback?.(error),
  );
}

export class RedisSessionStore extends session.Store implements RetiringSessionStore {
  constructor(
    private readonly redis: RedisCommands,
    private readonly options: RedisStoreOptions,
  ) {
    super();
  }

  private keysOf(sid: string): string[] {
    const prefix = this.options.keyPrefix;
    return [`${prefix}session:${sid}`, `${prefix}session-ended:${sid}`];
  }

  private call<T>(operation: () => Promise<T>): Promise<T> {
    return callRedis('sessions', operation, this.options.commandTimeoutMs);
  }

  /** How long the session has left by the app's clock, in whole milliseconds. */
  private lifetimeOf(data: session.SessionData): number {
    const expires = data.cookie?.expires;
    if (!expires) return FALLBACK_TTL_MS;
    return Math.ceil(new Date(expires).getTime() - this.options.clock.now().getTime());
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    const [sessionKey] = this.keysOf(sid);
    const reading = this.call(() => this.redis.sendCommand(['GET', sessionKey!]));
    answer(
      reading.then((reply) =>
        typeof reply === 'string' ? (JSON.parse(reply) as session.SessionData) : null,
      ),
      callback,
    );
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const saving = this.call(() =>
      SAVE(this.redis, this.keysOf(sid), [JSON.stringify(data), this.lifetimeOf(data)]),
    );
    answer(saving, (error) => callback?.(error ?? undefined));
  }

  /**
   * Pushes the idle deadline on (rolling sessions). It is a refresh the page does not need: when
   * Redis does not answer it is skipped, as the SQLite store skips it while the database is
   * locked, and the next request refreshes it.
   */
  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const touching = this.call(() => TOUCH(this.redis, this.keysOf(sid), [this.lifetimeOf(data)]));
    answer(touching, (error) =>
      callback?.(error instanceof StoreUnavailableError ? undefined : (error ?? undefined)),
    );
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.retireSession(sid, (error) => callback?.(error ?? undefined));
  }

  retireSession(sid: string, callback: (err: unknown, wasLive?: boolean) => void): void {
    const retiring = this.call(() => RETIRE(this.redis, this.keysOf(sid), [TOMBSTONE_MIN_LIFETIME_MS]));
    answer(
      retiring.then((reply) => reply === 1),
      callback,
    );
  }
}

export function createRedisSessionStore(redis: RedisCommands, options: RedisStoreOptions): RedisSessionStore {
  return new RedisSessionStore(redis, options);
}
