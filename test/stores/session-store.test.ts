import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/db/open.js';
import { SqliteSessionStore } from '../../src/http/session-store.js';
import { createRedisSessionStore } from '../../src/stores/redis/session-store.js';
import { createTestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
  sleep,
} from '../helpers/redis.js';
import { describeSessionStoreContract } from './contracts/session-store.js';

describeSessionStoreContract('sqlite', async () => {
  const clock = createTestClock();
  const folder = mkdtempSync(join(tmpdir(), 'sessions-'));
  const path = join(folder, 'app.db');
  // Two connections to one file, as two processes on one machine would have.
  const db = openDatabase(path);
  const otherDb = openDatabase(path);
  return {
    store: new SqliteSessionStore(db, clock),
    peer: new SqliteSessionStore(otherDb, clock),
    clock,
    // The SQLite store reads expiry by the app's clock.
    elapse: async (ms) => clock.advance(ms),
    async close() {
      otherDb.close();
      db.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
});

describeSessionStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const keyPrefix = randomKeyPrefix();
    const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    return {
      store: createRedisSessionStore(first, { keyPrefix, clock }),
      peer: createRedisSessionStore(second, { keyPrefix, clock }),
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
