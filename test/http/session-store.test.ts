import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/stores/errors.js';
import { SqlSessionStore } from '../../src/stores/sql/session-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { openTestSqliteDatabase } from '../helpers/sql.js';
import { sessionCalls, sessionDataAt } from '../stores/contracts/session-store.js';

/**
 * What only the session store on SQLite does: wait out another process's write lock with timers,
 * briefly, never with the event loop blocked. (What every backend does is in
 * test/stores/contracts/session-store.ts.)
 */
describe('the session store on SQLite, while another process holds the write lock', () => {
  let sql: Awaited<ReturnType<typeof openTestSqliteDatabase>>;
  let clock: TestClock;
  let store: ReturnType<typeof sessionCalls>;
  let other: Database.Database;
  const data = (fields: Record<string, unknown>) => sessionDataAt(clock.now(), fields);

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    store = sessionCalls(new SqlSessionStore(sql.database, clock));
    other = new Database(sql.path);
    other.exec('BEGIN IMMEDIATE');
  });
  afterEach(async () => {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    await sql.close();
  });

  it('still reads sessions', async () => {
    other.exec('ROLLBACK');
    await store.set('reader', data({ channel: 'sms' }));
    other.exec('BEGIN IMMEDIATE');
    expect(await store.get('reader')).toMatchObject({ channel: 'sms' });
  });

  it('gives up on a save within half a second, as the store being unavailable (the 503 page)', async () => {
    const startedAt = Date.now();
    const failure = await store.set('blocked', data({})).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as StoreUnavailableError).cause).toMatchObject({ code: 'SQLITE_BUSY' });
    expect(Date.now() - startedAt).toBeLessThan(1000);
  });

  it('saves once the lock is released within that time', async () => {
    const saving = store.set('patient', data({ channel: 'voice' }));
    setTimeout(() => other.exec('ROLLBACK'), 50);
    await saving;
    expect(await store.get('patient')).toMatchObject({ channel: 'voice' });
  });

  it('skips the rolling idle refresh without an error', async () => {
    await expect(store.touch('someone', data({}))).resolves.toBeUndefined();
  });
});

describe('the session middleware', () => {
  it('refuses at start a store that cannot keep ended sessions ended', async () => {
    // Threat: a store without tombstones (MemoryStore, a plain connect-redis) silently bringing
    // back "logout undone by a request still in flight".
    const { default: session } = await import('express-session');
    const { createSessionMiddleware } = await import('../../src/http/session.js');
    expect(() =>
      createSessionMiddleware({
        secret: 'x'.repeat(32),
        store: new session.MemoryStore() as never,
        isProduction: false,
      }),
    ).toThrow(/keep ended sessions ended/);
  });
});
