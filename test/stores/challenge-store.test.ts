import { createRedisChallengeStore } from '../../src/stores/redis/challenge-store.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { isRedisAvailable, openRedisPair } from '../helpers/redis.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeChallengeStoreContract } from './contracts/challenge-store.js';

for (const backend of sqlBackends()) {
  describeChallengeStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      // Two connections to one database, as two processes or instances have.
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      let accounts = 0;
      return {
        store: createSqlChallengeStore(sql.database, clock),
        peer: createSqlChallengeStore(peer, clock),
        clock,
        async createUserId() {
          accounts += 1;
          const user = await users.create({
            username: `user${accounts}`,
            passwordHash: 'not-a-real-hash',
            phone: '+12025550142',
            preferredChannel: 'sms',
          });
          if (!user) throw new Error('test user could not be created');
          return user.id;
        },
        close: () => sql.close(),
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
