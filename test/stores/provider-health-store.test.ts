import { createMemoryProviderHealthStore } from '../../src/mfa/providers/provider-health.js';
import { createRedisProviderHealthStore } from '../../src/stores/redis/provider-health-store.js';
import { createTestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
  sleep,
} from '../helpers/redis.js';
import { describeProviderHealthStoreContract } from './contracts/provider-health-store.js';

describeProviderHealthStoreContract('memory', async () => {
  const clock = createTestClock();
  // One process holds the state: its "other instance" is the same store.
  const store = createMemoryProviderHealthStore(clock);
  return { store, peer: store, clock, elapse: async (ms) => clock.advance(ms), close: async () => undefined };
});

describeProviderHealthStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const keyPrefix = randomKeyPrefix();
    const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    return {
      store: createRedisProviderHealthStore(first, { keyPrefix, clock }),
      peer: createRedisProviderHealthStore(second, { keyPrefix, clock }),
      clock,
      // Redis counts the cooldown down by its own clock: real time has to pass (a little more, as timers round).
      elapse: async (ms) => {
        await sleep(ms + 25);
        clock.advance(ms);
      },
      async close() {
        await deleteKeysWithPrefix(first, keyPrefix);
        first.destroy();
        second.destroy();
      },
    };
  },
  { skip: !isRedisAvailable() },
);
