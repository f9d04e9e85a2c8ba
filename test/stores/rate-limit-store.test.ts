import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createRedisRateLimitStore } from '../../src/stores/redis/rate-limit-store.js';
import { createTestClock } from '../helpers/clock.js';
import { elapseOnRedis, isRedisAvailable, openRedisPair } from '../helpers/redis.js';
import { describeRateLimitStoreContract } from './contracts/rate-limit-store.js';

describeRateLimitStoreContract('memory', async () => {
  const clock = createTestClock();
  // One process holds the counters: its "other instance" is the same store.
  const store = createMemoryRateLimitStore(clock);
  return {
    store,
    peer: store,
    clock,
    elapse: async (ms) => clock.advance(ms),
    close: async () => undefined,
  };
});

describeRateLimitStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisRateLimitStore(redis, { keyPrefix, clock }),
    );
    return {
      store: pair.store,
      peer: pair.peer,
      clock,
      elapse: elapseOnRedis(clock),
      close: pair.close,
    };
  },
  { skip: !isRedisAvailable() },
);
