import { createMemoryVoiceDocumentStore } from '../../src/mfa/providers/signalwire-voice-route.js';
import { createRedisVoiceDocumentStore } from '../../src/stores/redis/voice-document-store.js';
import { createTestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
  sleep,
} from '../helpers/redis.js';
import { describeVoiceDocumentStoreContract } from './contracts/voice-document-store.js';

describeVoiceDocumentStoreContract('memory', async () => {
  const clock = createTestClock();
  // One process holds the documents: its "other instance" is the same store.
  const store = createMemoryVoiceDocumentStore(clock);
  return { store, peer: store, clock, elapse: async (ms) => clock.advance(ms), close: async () => undefined };
});

describeVoiceDocumentStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const keyPrefix = randomKeyPrefix();
    const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    return {
      store: createRedisVoiceDocumentStore(first, { keyPrefix, clock }),
      peer: createRedisVoiceDocumentStore(second, { keyPrefix, clock }),
      clock,
      // Redis counts lifetimes down by its own clock: real time has to pass (a little more, as timers round).
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
