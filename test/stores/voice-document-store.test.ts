import { createMemoryVoiceDocumentStore } from '../../src/mfa/providers/signalwire-voice-route.js';
import { createRedisVoiceDocumentStore } from '../../src/stores/redis/voice-document-store.js';
import { createTestClock } from '../helpers/clock.js';
import { elapseOnRedis, isRedisAvailable, openRedisPair } from '../helpers/redis.js';
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
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisVoiceDocumentStore(redis, { keyPrefix, clock }),
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
