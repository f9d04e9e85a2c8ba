import { createMemoryTwilioVerificationLedger } from '../../src/mfa/providers/twilio-verification-ledger.js';
import { createRedisTwilioVerificationLedger } from '../../src/stores/redis/twilio-verification-ledger.js';
import { createTestClock } from '../helpers/clock.js';
import { elapseOnRedis, isRedisAvailable, openRedisPair } from '../helpers/redis.js';
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
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisTwilioVerificationLedger(redis, { keyPrefix, clock, rememberMs }),
    );
    return {
      ledger: pair.store,
      peer: pair.peer,
      clock,
      elapse: elapseOnRedis(clock),
      close: pair.close,
    };
  },
  { skip: !isRedisAvailable() },
);
