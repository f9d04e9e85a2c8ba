import { statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHousekeeping, type HousekeepingTask } from '../../../src/housekeeping.js';
import { createLogger } from '../../../src/logger.js';
import { createStores } from '../../../src/stores/index.js';
import {
  SESSION_DELETE_BATCH_SIZE,
  createExpiredSessionTasks,
  createWalCheckpointTask,
} from '../../../src/stores/sql/housekeeping.js';
import { SqlSessionStore } from '../../../src/stores/sql/session-store.js';
import { createTestClock, type TestClock } from '../../helpers/clock.js';
import { openTestSqliteDatabase, sqlBackends, type TestSqlDatabase } from '../../helpers/sql.js';

const MINUTE_MS = 60_000;

/** Runs one housekeeping pass over `tasks` and returns the size of every batch each one deleted. */
async function runPass(tasks: HousekeepingTask[]): Promise<Map<string, number[]>> {
  const batches = new Map<string, number[]>();
  const counting = tasks.map((task) => ({
    ...task,
    runBatch: async () => {
      const removed = await task.runBatch();
      batches.set(task.name, [...(batches.get(task.name) ?? []), removed]);
      return removed;
    },
  }));
  const housekeeping = startHousekeeping({
    tasks: counting,
    intervalMs: 60 * MINUTE_MS,
    logger: createLogger('silent'),
  });
  await housekeeping.runOnce();
  housekeeping.stop();
  return batches;
}

// Threat: expired sessions piling up without end (each anonymous visit once wrote one), or one
// big delete holding every request up.
for (const backend of sqlBackends()) {
  describe.skipIf(backend.skip)(`expired sessions on ${backend.name}`, () => {
    let sql: TestSqlDatabase;
    let clock: TestClock;

    beforeEach(async () => {
      sql = await backend.open();
      clock = createTestClock();
    });
    afterEach(() => sql.close());

    /** Writes `count` rows to `table` expiring `minutes` from now, `prefix`-0, `prefix`-1... */
    async function insertRows(
      table: 'sessions' | 'session_tombstones',
      prefix: string,
      count: number,
      minutes: number,
    ) {
      const expiresAt = clock.now().getTime() + minutes * MINUTE_MS;
      for (let start = 0; start < count; start += 500) {
        const rows = Array.from({ length: Math.min(500, count - start) }, (_, i) => ({
          sid: `${prefix}-${start + i}`,
          expires_at: expiresAt + start + i,
          ...(table === 'sessions' ? { data: '{"cookie":{}}' } : {}),
        }));
        if (table === 'sessions')
          await sql.database.db
            .insertInto('sessions')
            .values(rows as Array<{ sid: string; data: string; expires_at: number }>)
            .execute();
        else await sql.database.db.insertInto('session_tombstones').values(rows).execute();
      }
    }
    const sidsIn = async (table: 'sessions' | 'session_tombstones') =>
      (await sql.database.db.selectFrom(table).select('sid').orderBy('sid').execute()).map((row) => row.sid);

    it('deletes only expired sessions and tombstones, a batch of 250 at most at a time', async () => {
      await insertRows('sessions', 'expired', 1_234, 1);
      await insertRows('sessions', 'live', 3, 120);
      await insertRows('session_tombstones', 'expired', 1_100, 1);
      await insertRows('session_tombstones', 'live', 2, 120);
      clock.advanceMinutes(60);

      const tasks = createExpiredSessionTasks({ sessions: new SqlSessionStore(sql.database, clock), clock });
      const batches = await runPass(tasks);

      expect(await sidsIn('sessions')).toEqual(['live-0', 'live-1', 'live-2']);
      expect(await sidsIn('session_tombstones')).toEqual(['live-0', 'live-1']);
      expect(batches.get('expired sessions')).toEqual([250, 250, 250, 250, 234]);
      expect(batches.get('expired session tombstones')).toEqual([250, 250, 250, 250, 100]);
      expect(SESSION_DELETE_BATCH_SIZE).toBe(250);
    });

    it('leaves a session that expires later alone until it has expired', async () => {
      await insertRows('sessions', 'soon', 2, 10);
      const tasks = createExpiredSessionTasks({ sessions: new SqlSessionStore(sql.database, clock), clock });
      clock.advanceMinutes(9);
      await runPass(tasks);
      expect(await sidsIn('sessions')).toEqual(['soon-0', 'soon-1']);
      clock.advanceMinutes(2);
      await runPass(tasks);
      expect(await sidsIn('sessions')).toEqual([]);
    });
  });
}

describe('the SQLite write-ahead log', () => {
  it('is checkpointed and truncated by the housekeeping task', async () => {
    // Threat: the -wal file keeping the size of its largest burst for as long as the site runs.
    const sqlite = await openTestSqliteDatabase();
    try {
      const clock = createTestClock();
      const store = new SqlSessionStore(sqlite.database, clock);
      const data = JSON.stringify({ cookie: {}, filler: 'x'.repeat(500) });
      for (let i = 0; i < 200; i += 1) {
        await sqlite.database.db
          .insertInto('sessions')
          .values({ sid: `s${i}`, data, expires_at: 0 })
          .execute();
      }
      await store.deleteExpiredSessions(clock.now(), 500);
      expect(statSync(`${sqlite.path}-wal`).size).toBeGreaterThan(0);

      await runPass([createWalCheckpointTask(sqlite.database)]);

      expect(statSync(`${sqlite.path}-wal`).size).toBe(0);
      expect(await sqlite.database.isHealthy()).toBe(true);
    } finally {
      await sqlite.close();
    }
  });
});

describe('createStores', () => {
  it('hands server.ts the session sweeps and, on SQLite, the WAL checkpoint last', async () => {
    const sqlite = await openTestSqliteDatabase();
    try {
      const stores = await createStores({
        config: { databasePath: sqlite.path, redisKeyPrefix: 'keyhole:' },
        clock: createTestClock(),
        logger: createLogger('silent'),
        codeHashKey: 'test-code-hash-key',
        database: sqlite.database,
      });
      expect(stores.housekeeping.map((task) => task.name)).toEqual([
        'expired sessions',
        'expired session tombstones',
        'expired one-time links',
        'expired remembered browsers',
        'expired API verifications',
        'old Idempotency-Keys',
        'SQLite WAL checkpoint',
      ]);
      await stores.close();
    } finally {
      await sqlite.close();
    }
  });
});
