import type { RateLimitStore, WindowCount } from '../../http/rate-limit.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * Fixed-window counters, and sets of distinct members, shared by every instance. Each operation
 * is one round trip and one atomic step inside Redis, so racing requests on different instances
 * get distinct counts (or the same answer for one member) and stop at the same limit.
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

// A set of members is a hash (field: the member, value: its holders), so HLEN counts the distinct
// members. The check and the hold are one script: every holder of one member gets the same answer.
// The window opens with the hash (PEXPIRE when it has none, as INCREMENT does) and ends when the
// hash expires, or when its last member leaves (Redis deletes an empty hash). Nothing is written
// for a member not held, so a refusal never opens or moves a window.
const HOLD_MEMBER = defineLuaScript(`
local holders = redis.call('HGET', KEYS[1], ARGV[1])
local members = redis.call('HLEN', KEYS[1])
local held = 0
if holders then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  held = 1
elseif members < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], 1)
  members = members + 1
  held = 1
end
if members == 0 then return {0, 0, tonumber(ARGV[3]), 0} end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  left = tonumber(ARGV[3])
end
return {held, members, left, redis.call('PEXPIRETIME', KEYS[1])}
`);

// Only in the window named (ARGV[2]), as DECREMENT; the member leaves with its last holder.
const RELEASE_MEMBER = defineLuaScript(`
if not ARGV[2] or redis.call('PEXPIRETIME', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
local holders = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not holders then return 0 end
if holders > 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
`);

function assertWindowMs(windowMs: number) {
  if (!Number.isInteger(windowMs) || windowMs <= 0) {
    throw new RangeError(`windowMs must be a positive whole number of milliseconds, not ${windowMs}`);
  }
}

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
      assertWindowMs(windowMs);
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
    async holdMember(key, member, limit, windowMs) {
      assertWindowMs(windowMs);
      // Lua reads no "Infinity": an unlimited set is not a set that needs this store.
      if (!Number.isInteger(limit) || limit < 0) {
        throw new RangeError(`limit must be a whole number of members, not ${limit}`);
      }
      const reply = await call(() => HOLD_MEMBER(redis, [keyOf(key)], [member, limit, windowMs]));
      const [held, members, msLeft, endsAt] = reply as [number, number, number, number];
      return {
        held: held === 1,
        members,
        resetAt: new Date(clock.now().getTime() + Math.max(0, msLeft)),
        window: String(endsAt),
      };
    },
    async releaseMember(key, member, window) {
      await call(() =>
        RELEASE_MEMBER(redis, [keyOf(key)], window === undefined ? [member] : [member, window]),
      );
    },
    async reset(key) {
      await call(() => redis.sendCommand(['DEL', keyOf(key)]));
    },
  };
}
