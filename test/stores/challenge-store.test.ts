import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/db/open.js';
import { createSqliteChallengeStore } from '../../src/mfa/challenge-store.js';
import { createRedisChallengeStore } from '../../src/stores/redis/challenge-store.js';
import { createSqliteUserStore } from '../../src/users/store.js';
import { createTestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../helpers/redis.js';
import { describeChallengeStoreContract } from './contracts/challenge-store.js';

describeChallengeStoreContract('sqlite', async () => {
  const clock = createTestClock();
  const folder = mkdtempSync(join(tmpdir(), 'challenges-'));
  const path = join(folder, 'app.db');
  // Two connections to one file, as two processes on one machine would have.
  const db = openDatabase(path);
  const otherDb = openDatabase(path);
  const users = createSqliteUserStore(db, clock);
  let accounts = 0;
  return {
    store: createSqliteChallengeStore(db, clock),
    peer: createSqliteChallengeStore(otherDb, clock),
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
    async close() {
      otherDb.close();
      db.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
});

describeChallengeStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const keyPrefix = randomKeyPrefix();
    const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    let accounts = 0;
    return {
      store: createRedisChallengeStore(first, { keyPrefix, clock }),
      peer: createRedisChallengeStore(second, { keyPrefix, clock }),
      clock,
      createUserId: async () => (accounts += 1),
      async close() {
        await deleteKeysWithPrefix(first, keyPrefix);
        first.destroy();
        second.destroy();
      },
    };
  },
  { skip: !isRedisAvailable() },
);
