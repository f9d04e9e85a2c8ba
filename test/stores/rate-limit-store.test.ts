import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createRedisRateLimitStore } from '../../src/stores/redis/rate-limit-store.js';
import { createTestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
  sleep,
} from '../helpers/redis.js';
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
    const keyPrefix = randomKeyPrefix();
    const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    return {
      store: createRedisRateLimitStore(first, { keyPrefix, clock }),
      peer: createRedisRateLimitStore(second, { keyPrefix, clock }),
      clock,
      // Redis times the windows by its own clock: real time has to pass (a little more, as timers round).
      elapse: async (ms) => {
        await sleep(ms + 25);
        clock.advance(ms);
      },
      close: async () => {
        await deleteKeysWithPrefix(first, keyPrefix);
        first.destroy();
        second.destroy();
      },
    };
  },
  { skip: !isRedisAvailable() },
);
