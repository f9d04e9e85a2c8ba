import type { RateLimitStore, WindowCount } from '../../http/rate-limit.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * Fixed-window counters shared by every instance. Each operation is one round trip and one atomic
 * step inside Redis, so racing requests on different instances get distinct counts and stop at
 * the same limit.
 *
 * Time: Redis measures the window. The first increment sets the key's expiry (PEXPIRE) and Redis
 * deletes it when the window ends, by its own clock; nothing compares timestamps across machines.
 * The window's end is reported in the app's clock as "now + the time Redis says is left (PTTL)",
 * so callers can subtract `clock.now()` from it as they do with the in-memory store.
 *
 * A window is named by its exact end in Redis's own clock (PEXPIRETIME, Redis 7): it never moves
 * while a count in it is outstanding (DECR keeps it; an increment moves it only when it finds the
 * count at 0, where the memory store keeps its window, and then no hand-back can be waiting for the
 * old one), and a window opened after one ended ends later. The one gap: a key reset and counted again so that its new window ends in
 * the very millisecond the old one would have (the same length, within a millisecond) takes a late
 * hand-back of the old window's count.
 */

// The window opens on the first increment only; later ones never move its end. A key without an
// expiry (left by hand, or by an old version) gets one rather than counting forever.
const INCREMENT = defineLuaScript(`
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if count == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left, redis.call('PEXPIRETIME', KEYS[1])}
`);

// DECR keeps the key's expiry, so taking one back never stretches the window; an absent key (the
// window ended meanwhile) is left absent rather than reopened at -1. Only the window named
// (ARGV[1]) is taken from: a key whose window ended since has a later end, or none. A call that
// names none (untyped code) takes nothing. It answers the count DECR left (nil when it took
// nothing), read in the same script, so of racing hand-backs on any instances one alone sees 0.
const DECREMENT = defineLuaScript(`
local count = tonumber(redis.call('GET', KEYS[1]))
if not count or count <= 0 then return false end
if not ARGV[1] or redis.call('PEXPIRETIME', KEYS[1]) ~= tonumber(ARGV[1]) then return false end
return redis.call('DECR', KEYS[1])
`);

const GET = defineLuaScript(`
local count = redis.call('GET', KEYS[1])
if not count then return false end
return {tonumber(count), redis.call('PTTL', KEYS[1]), redis.call('PEXPIRETIME', KEYS[1])}
`);

export function createRedisRateLimitStore(
  redis: RedisCommands,
  { keyPrefix, clock, commandTimeoutMs }: RedisStoreOptions,
): RateLimitStore {
  const call = <T>(operation: () => Promise<T>) => callRedis('rate limits', operation, commandTimeoutMs);
  const keyOf = (key: string) => `${keyPrefix}limit:${key}`;
  const toWindowCount = ([count, msLeft, endsAt]: [number, number, number]): WindowCount => ({
    count,
    resetAt: new Date(clock.now().getTime() + Math.max(0, msLeft)),
    window: String(endsAt),
  });

  return {
    async increment(key, windowMs) {
      if (!Number.isInteger(windowMs) || windowMs <= 0) {
        throw new RangeError(`windowMs must be a positive whole number of milliseconds, not ${windowMs}`);
      }
      const reply = await call(() => INCREMENT(redis, [keyOf(key)], [windowMs]));
      return toWindowCount(reply as [number, number, number]);
    },
    async decrement(key, window) {
      const reply = await call(() => DECREMENT(redis, [keyOf(key)], window === undefined ? [] : [window]));
      return reply === null ? null : Number(reply);
    },
    async get(key) {
      const reply = await call(() => GET(redis, [keyOf(key)], []));
      return reply === null ? null : toWindowCount(reply as [number, number, number]);
    },
    async reset(key) {
      await call(() => redis.sendCommand(['DEL', keyOf(key)]));
    },
  };
}
