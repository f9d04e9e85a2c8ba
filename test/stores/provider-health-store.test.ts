import { createMemoryProviderHealthStore } from '../../src/mfa/providers/provider-health.js';
import { createRedisProviderHealthStore } from '../../src/stores/redis/provider-health-store.js';
import { createTestClock } from '../helpers/clock.js';
import { elapseOnRedis, isRedisAvailable, openRedisPair } from '../helpers/redis.js';
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
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisProviderHealthStore(redis, { keyPrefix, clock }),
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
