import { z } from 'zod';
import type { Challenge, ChallengeStore, CloseReason } from '../../mfa/challenge-store.js';
import { CHANNELS, SCOPES, type Scope } from '../../mfa/provider.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * Challenges shared by every instance: a code sent by one is checked by any other. Each rule that
 * must hold across requests (attempts under the cap, one acceptance, a newer code closing the
 * older ones) is one Lua script, so no other command runs between its check and its write.
 *
 * Keys, under the store's prefix:
 *   challenge:<id>                     a hash: the challenge's fields, absent ones left out
 *   challenges-open:<userId>:<scope>   a sorted set of the open ones (findOpen, closeOthers)
 *   challenge-seq                      a counter that orders challenges sent in the same millisecond
 *
 * Time: the app's clock decides everything (expiry, closedAt). Redis's clock only counts down how
 * long a key is kept: a day after the challenge expires, set as a duration from the app's "now",
 * so a clock skew between the app and Redis never shortens or lengthens a challenge. Redis deletes
 * the keys itself, so the housekeeping sweep (`deleteExpired`) has nothing to do here.
 *
 * The scripts name challenge keys they read from the index: fine on one Redis server (with or
 * without replicas), not on Redis Cluster, where keys would need a shared hash tag.
 */

/** As long as the SQLite store keeps them before its housekeeping deletes them. */
const EXPIRED_CHALLENGES_KEPT_MS = 24 * 60 * 60_000;

/** Index members are "<seq, 16 digits>:<id>": equal scores (sentAt) then sort by creation. */
const SEQ_DIGITS = 16;

const CREATE = defineLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ERR challenge id already in use') end
local member = string.format('%0${SEQ_DIGITS}d', redis.call('INCR', KEYS[3])) .. ':' .. ARGV[3]
redis.call('HSET', KEYS[1], 'wrongAttempts', 0, 'openIndex', KEYS[2], 'openMember', member, unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], member)
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return 1
`);

// Walks the index from the newest; entries whose challenge Redis already deleted are dropped.
const FIND_OPEN = defineLuaScript(`
while true do
  local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0)
  if #newest == 0 then return false end
  local key = ARGV[1] .. string.sub(newest[1], ${SEQ_DIGITS + 2})
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'closedAt') == 0 then
    return redis.call('HGETALL', key)
  end
  redis.call('ZREM', KEYS[1], newest[1])
end
`);

const CLOSE_OTHERS = defineLuaScript(`
local closed = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local id = string.sub(member, ${SEQ_DIGITS + 2})
  if id ~= ARGV[2] then
    local key = ARGV[1] .. id
    redis.call('ZREM', KEYS[1], member)
    if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'closedAt') == 0 then
      redis.call('HSET', key, 'closedAt', ARGV[3], 'closeReason', ARGV[4])
      table.insert(closed, redis.call('HGETALL', key))
    end
  end
end
return closed
`);

const RESERVE_ATTEMPT = defineLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'closedAt') == 1 then return false end
if tonumber(redis.call('HGET', KEYS[1], 'wrongAttempts')) >= tonumber(ARGV[1]) then return false end
return redis.call('HINCRBY', KEYS[1], 'wrongAttempts', 1)
`);

const RELEASE_ATTEMPT = defineLuaScript(`
local used = tonumber(redis.call('HGET', KEYS[1], 'wrongAttempts'))
if used and used > 0 then redis.call('HINCRBY', KEYS[1], 'wrongAttempts', -1) end
return 0
`);

// Only the call that finds the challenge open closes it and gets 1: of two instances accepting the
// same right code at the same moment, exactly one gets through.
const CLOSE = defineLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'closedAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'closedAt', ARGV[1], 'closeReason', ARGV[2])
local index = redis.call('HMGET', KEYS[1], 'openIndex', 'openMember')
redis.call('ZREM', index[1], index[2])
return 1
`);

const CLOSE_REASONS = [
  'accepted',
  'used_up',
  'replaced',
  'expired',
  'locked',
] as const satisfies readonly CloseReason[];

const whole = z.coerce.number().int();
/** A challenge as read back from its hash (every value is a string there). */
const storedChallenge = z.object({
  id: z.string(),
  userId: whole,
  scope: z.enum(SCOPES),
  phone: z.string(),
  channel: z.enum(CHANNELS),
  provider: z.string(),
  handle: z.string().optional(),
  sentAt: whole,
  expiresAt: whole,
  wrongAttempts: whole,
  closedAt: whole.optional(),
  closeReason: z.enum(CLOSE_REASONS).optional(),
});

function toChallenge(flatHash: unknown): Challenge {
  const pairs = flatHash as string[];
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) fields[pairs[i]!] = pairs[i + 1]!;
  const { handle, closedAt, closeReason, ...rest } = storedChallenge.parse(fields);
  return {
    ...rest,
    ...(handle === undefined ? {} : { handle }),
    closedAt: closedAt ?? null,
    closeReason: closeReason ?? null,
  };
}

export function createRedisChallengeStore(
  redis: RedisCommands,
  { keyPrefix, clock, commandTimeoutMs }: RedisStoreOptions,
): ChallengeStore {
  const challengeKeyPrefix = `${keyPrefix}challenge:`;
  const challengeKey = (id: string) => challengeKeyPrefix + id;
  const openIndexKey = (userId: number, scope: Scope) => `${keyPrefix}challenges-open:${userId}:${scope}`;
  const seqKey = `${keyPrefix}challenge-seq`;
  const call = <T>(operation: () => Promise<T>) => callRedis('challenges', operation, commandTimeoutMs);

  return {
    async create(challenge) {
      const keptMs = Math.max(
        1,
        Math.ceil(challenge.expiresAt + EXPIRED_CHALLENGES_KEPT_MS - clock.now().getTime()),
      );
      const fields = Object.entries({
        id: challenge.id,
        userId: challenge.userId,
        scope: challenge.scope,
        phone: challenge.phone,
        channel: challenge.channel,
        provider: challenge.provider,
        handle: challenge.handle,
        sentAt: challenge.sentAt,
        expiresAt: challenge.expiresAt,
      }).flatMap(([field, value]) => (value === undefined ? [] : [field, String(value)]));
      await call(() =>
        CREATE(
          redis,
          [challengeKey(challenge.id), openIndexKey(challenge.userId, challenge.scope), seqKey],
          [keptMs, challenge.sentAt, challenge.id, ...fields],
        ),
      );
      return { ...challenge, wrongAttempts: 0, closedAt: null, closeReason: null };
    },
    async findById(id) {
      const reply = await call(() => redis.sendCommand(['HGETALL', challengeKey(id)]));
      return (reply as string[]).length === 0 ? null : toChallenge(reply);
    },
    async findOpen(userId, scope) {
      const reply = await call(() => FIND_OPEN(redis, [openIndexKey(userId, scope)], [challengeKeyPrefix]));
      return reply === null ? null : toChallenge(reply);
    },
    async closeOthers(userId, scope, keepId, reason) {
      const reply = await call(() =>
        CLOSE_OTHERS(
          redis,
          [openIndexKey(userId, scope)],
          [challengeKeyPrefix, keepId, clock.now().getTime(), reason],
        ),
      );
      return (reply as unknown[]).map(toChallenge);
    },
    async reserveAttempt(id, max) {
      const reply = await call(() => RESERVE_ATTEMPT(redis, [challengeKey(id)], [max]));
      return reply === null ? null : Number(reply);
    },
    async releaseAttempt(id) {
      await call(() => RELEASE_ATTEMPT(redis, [challengeKey(id)], []));
    },
    async close(id, reason) {
      const reply = await call(() => CLOSE(redis, [challengeKey(id)], [clock.now().getTime(), reason]));
      return reply === 1;
    },
    async deleteExpired() {
      // Each key expires by itself a day after its challenge (see the PEXPIRE in CREATE).
      return 0;
    },
  };
}
