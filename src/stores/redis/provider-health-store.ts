import type { ProviderHealth, ProviderHealthStore } from '../../mfa/providers/provider-health.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * The circuit breaker's state shared by every instance: a provider skipped by one is skipped by
 * all, and outages seen by several instances at once all count (HINCRBY inside one script).
 *
 * Keys, under the store's prefix:
 *   provider-health:<name>    a hash: outagesInARow, misconfigured, breakerOpened (absent = 0)
 *   provider-skipped:<name>   present while the provider is skipped; its expiry is the cooldown
 *
 * Time: Redis counts the cooldown down (PEXPIRE), so no instance compares its clock with another's;
 * `skippedUntil` is reported as the app's "now" plus the time Redis says is left, as the rate-limit
 * store reports a window's end. A health hash is kept HEALTH_KEPT_MS after its last change, so a
 * provider removed from MFA_PROVIDER leaves nothing behind for long.
 */

const HEALTH_KEPT_MS = 24 * 60 * 60_000;

// KEYS: the health hashes, then the skip keys, one of each per name. Returns, per name:
// {outagesInARow, misconfigured, breakerOpened, ms left skipped (negative when not)}.
const READ = defineLuaScript(`
local count = #KEYS / 2
local states = {}
for i = 1, count do
  local fields = redis.call('HMGET', KEYS[i], 'outagesInARow', 'misconfigured', 'breakerOpened')
  states[i] = {
    tonumber(fields[1] or '0'),
    tonumber(fields[2] or '0'),
    tonumber(fields[3] or '0'),
    redis.call('PTTL', KEYS[count + i]),
  }
end
return states
`);

// The threshold and "on probation" checks happen where the count is kept, so two instances
// recording the threshold-th outage at once both see it.
const RECORD_OUTAGE = defineLuaScript(`
local outages = redis.call('HINCRBY', KEYS[1], 'outagesInARow', 1)
if outages >= tonumber(ARGV[1]) or redis.call('HGET', KEYS[1], 'breakerOpened') == '1' then
  redis.call('HSET', KEYS[1], 'breakerOpened', 1)
  if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], 1, 'PX', ARGV[2]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
`);

const RECORD_MISCONFIGURED = defineLuaScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'misconfigured', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
`);

export function createRedisProviderHealthStore(
  redis: RedisCommands,
  { keyPrefix, clock, commandTimeoutMs }: RedisStoreOptions,
): ProviderHealthStore {
  const healthKey = (name: string) => `${keyPrefix}provider-health:${name}`;
  const skippedKey = (name: string) => `${keyPrefix}provider-skipped:${name}`;
  const call = <T>(operation: () => Promise<T>) => callRedis('provider health', operation, commandTimeoutMs);

  return {
    async read(names) {
      if (names.length === 0) return [];
      const reply = await call(() => READ(redis, [...names.map(healthKey), ...names.map(skippedKey)], []));
      const now = clock.now().getTime();
      return (reply as Array<[number, number, number, number]>).map(
        ([outagesInARow, misconfigured, breakerOpened, msLeftSkipped]): ProviderHealth => ({
          outagesInARow,
          misconfigured: misconfigured === 1,
          breakerOpened: breakerOpened === 1,
          skippedUntil: msLeftSkipped > 0 ? new Date(now + msLeftSkipped) : null,
        }),
      );
    },
    async recordAnswer(name) {
      await call(() => redis.sendCommand(['DEL', healthKey(name), skippedKey(name)]));
    },
    async recordMisconfigured(name) {
      await call(() => RECORD_MISCONFIGURED(redis, [healthKey(name), skippedKey(name)], [HEALTH_KEPT_MS]));
    },
    async recordOutage(name, { threshold, cooldownMs }) {
      // MFA_PROVIDER_COOLDOWN_SECONDS=0 is allowed: the breaker then never skips anyone.
      if (!Number.isInteger(cooldownMs) || cooldownMs < 0) {
        throw new RangeError(`cooldownMs must be a whole number of milliseconds, not ${cooldownMs}`);
      }
      await call(() =>
        RECORD_OUTAGE(redis, [healthKey(name), skippedKey(name)], [threshold, cooldownMs, HEALTH_KEPT_MS]),
      );
    },
  };
}
