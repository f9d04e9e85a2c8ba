import { randomBytes } from 'node:crypto';
import {
  assertMemberLimit,
  assertWindowMs,
  type RateLimitStore,
  type WindowCount,
} from '../../http/rate-limit.js';
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
 * old one), and a window opened after one ended ends no earlier. The one gap: a key reset and
 * counted again so that its new window ends in the very millisecond the old one would have takes a
 * late hand-back of the old window's count. Windows of one length opened a while apart end apart,
 * but the day's counters all end at midnight, so for them that gap is real: none of them is reset.
 * Sets of members (holdMember) are named by a random id instead, since theirs do end at midnight.
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

// A set of members is a hash: field `w` names its window, and `m:<member>` counts each member's
// holders, so HLEN - 1 is the number of distinct members. The check and the hold are one script:
// every holder of one member gets the same answer. The window opens with the hash (its expiry set
// then) and ends when the hash expires, or when its last member leaves (the hash is deleted). Its
// name is a random id the opening hold brings, not its end: every set of the send guard ends at
// midnight, so a set emptied and opened again (or deleted by hand) would often end in the very
// millisecond the old one did, and a late release of the old one would free a place in the new.
// Nothing is written for a member not held, so a refusal never opens or moves a window.
const HOLD_MEMBER = defineLuaScript(`
local field = 'm:' .. ARGV[1]
local window = redis.call('HGET', KEYS[1], 'w')
local members = 0
local holders = false
if window then
  members = redis.call('HLEN', KEYS[1]) - 1
  holders = redis.call('HGET', KEYS[1], field)
end
local held = 0
if holders then
  redis.call('HINCRBY', KEYS[1], field, 1)
  held = 1
elseif members < tonumber(ARGV[2]) then
  if not window then
    window = ARGV[4]
    redis.call('HSET', KEYS[1], 'w', window)
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  redis.call('HSET', KEYS[1], field, 1)
  members = members + 1
  held = 1
end
if not window then return {0, 0, tonumber(ARGV[3]), ''} end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  left = tonumber(ARGV[3])
end
return {held, members, left, window}
`);

// Only in the window named (ARGV[2]); the member leaves with its last holder, and the set (its
// window) with its last member.
const RELEASE_MEMBER = defineLuaScript(`
if not ARGV[2] or redis.call('HGET', KEYS[1], 'w') ~= ARGV[2] then return 0 end
local field = 'm:' .. ARGV[1]
local holders = tonumber(redis.call('HGET', KEYS[1], field))
if not holders then return 0 end
if holders > 1 then
  redis.call('HINCRBY', KEYS[1], field, -1)
else
  redis.call('HDEL', KEYS[1], field)
  if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
end
return 1
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
      assertMemberLimit(limit);
      const newWindow = randomBytes(12).toString('base64url');
      const reply = await call(() => HOLD_MEMBER(redis, [keyOf(key)], [member, limit, windowMs, newWindow]));
      const [held, members, msLeft, window] = reply as [number, number, number, string];
      return {
        held: held === 1,
        members,
        resetAt: new Date(clock.now().getTime() + Math.max(0, msLeft)),
        window,
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
