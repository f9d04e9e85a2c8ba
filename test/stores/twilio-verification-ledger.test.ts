import { createMemoryTwilioVerificationLedger } from '../../src/mfa/providers/twilio-verification-ledger.js';
import { createRedisTwilioVerificationLedger } from '../../src/stores/redis/twilio-verification-ledger.js';
import { createTestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
  sleep,
} from '../helpers/redis.js';
import { describeTwilioVerificationLedgerContract } from './contracts/twilio-verification-ledger.js';

describeTwilioVerificationLedgerContract('memory', async ({ rememberMs }) => {
  const clock = createTestClock();
  // One process holds the ledger: its "other instance" is the same ledger.
  const ledger = createMemoryTwilioVerificationLedger(clock, { rememberMs });
  return {
    ledger,
    peer: ledger,
    clock,
    elapse: async (ms) => clock.advance(ms),
    close: async () => undefined,
  };
});

describeTwilioVerificationLedgerContract(
  'redis',
  async ({ rememberMs }) => {
    const clock = createTestClock();
    const keyPrefix = randomKeyPrefix();
    const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    return {
      ledger: createRedisTwilioVerificationLedger(first, { keyPrefix, clock, rememberMs }),
      peer: createRedisTwilioVerificationLedger(second, { keyPrefix, clock, rememberMs }),
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
