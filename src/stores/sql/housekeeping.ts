import { sql } from 'kysely';
import type { Clock } from '../../clock.js';
import type { HousekeepingTask } from '../../housekeeping.js';
import type { SqlDatabase } from './database.js';
import type { SqlSessionStore } from './session-store.js';

/**
 * Rows per delete. On SQLite the delete runs on the event loop, and no batch should hold requests
 * up for more than 10 ms: 250 sessions (of about 550 bytes) take about 2 ms of CPU, 500 took 3.5 ms
 * and up to 10 ms when the commit also ran SQLite's automatic checkpoint (every 1000 pages).
 */
export const SESSION_DELETE_BATCH_SIZE = 250;

/**
 * Sessions and tombstones past their expiry, deleted on the housekeeping timer (src/server.ts)
 * whatever the traffic, never on a request's way: a sweep of 100k rows in one statement once held
 * every request up for a quarter of a second.
 */
export function createExpiredSessionTasks(deps: {
  sessions: SqlSessionStore;
  clock: Clock;
}): HousekeepingTask[] {
  return [
    {
      name: 'expired sessions',
      batchSize: SESSION_DELETE_BATCH_SIZE,
      runBatch: () => deps.sessions.deleteExpiredSessions(deps.clock.now(), SESSION_DELETE_BATCH_SIZE),
    },
    {
      name: 'expired session tombstones',
      batchSize: SESSION_DELETE_BATCH_SIZE,
      runBatch: () => deps.sessions.deleteExpiredTombstones(deps.clock.now(), SESSION_DELETE_BATCH_SIZE),
    },
  ];
}

/**
 * SQLite only, after the deletes: copies the write-ahead log into the database and truncates it to
 * nothing. SQLite's own checkpoints (every 1000 pages) never shrink the -wal file, and readers in
 * other processes (a backup, the admin command) can hold them off. With busy_timeout 0 it never
 * waits for them: a checkpoint that meets one gives up, and the next pass tries again.
 */
export function createWalCheckpointTask(database: SqlDatabase): HousekeepingTask {
  return {
    name: 'SQLite WAL checkpoint',
    batchSize: 1,
    async runBatch() {
      await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(database.db);
      // Nothing counted as removed: one call a pass.
      return 0;
    },
  };
}
