import { createRedisChallengeStore } from '../../src/stores/redis/challenge-store.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createTestClock } from '../helpers/clock.js';
import { isRedisAvailable, openRedisPair } from '../helpers/redis.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { describeChallengeStoreContract } from './contracts/challenge-store.js';

for (const backend of sqlBackends()) {
  describeChallengeStoreContract(
    backend.name,
    async () => {
      // Two connections to one database, as two processes or instances have.
      const sql = await openSqlStorePair(backend, createSqlChallengeStore);
      return {
        store: sql.store,
        peer: sql.peer,
        clock: sql.clock,
        createUserId: sql.addAccount,
        close: sql.close,
      };
    },
    { skip: backend.skip },
  );
}

describeChallengeStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisChallengeStore(redis, { keyPrefix, clock }),
    );
    let accounts = 0;
    return {
      store: pair.store,
      peer: pair.peer,
      clock,
      createUserId: async () => (accounts += 1),
      close: pair.close,
    };
  },
  { skip: !isRedisAvailable() },
);
