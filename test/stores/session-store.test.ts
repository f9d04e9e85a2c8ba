import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRedisSessionStore } from '../../src/stores/redis/session-store.js';
import type { SqlDatabase } from '../../src/stores/sql/database.js';
import { createExpiredSessionTasks } from '../../src/stores/sql/housekeeping.js';
import { SqlSessionStore } from '../../src/stores/sql/session-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  elapseOnRedis,
  isRedisAvailable,
  openRedisPair,
  randomKeyPrefix,
} from '../helpers/redis.js';
import { sqlBackends, type TestSqlDatabase } from '../helpers/sql.js';
import { describeAccountSessionsContract } from './contracts/account-sessions.js';
import { describeSessionStoreContract, sessionCalls, sessionDataAt } from './contracts/session-store.js';

const MINUTE_MS = 60_000;

for (const backend of sqlBackends()) {
  describeSessionStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      // A second connection (pool) to the same data, as a second process or instance has.
      const peer = await sql.openPeer();
      return {
        store: new SqlSessionStore(sql.database, clock),
        peer: new SqlSessionStore(peer, clock),
        clock,
        // The SQL store reads expiry by the app's clock.
        elapse: async (ms) => clock.advance(ms),
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );

  describeAccountSessionsContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      return {
        store: new SqlSessionStore(sql.database, clock),
        peer: new SqlSessionStore(peer, clock),
        clock,
        elapse: async (ms) => clock.advance(ms),
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );

  /** What the SQL store keeps in its tables: tombstones hold no data, and are swept once past. */
  describe.skipIf(backend.skip)(`the session store's tables on ${backend.name}`, () => {
    let sql: TestSqlDatabase;
    let clock: TestClock;
    let sqlStore: SqlSessionStore;
    let store: ReturnType<typeof sessionCalls>;
    let peer: ReturnType<typeof sessionCalls>;
    const data = (fields: Record<string, unknown>, minutes?: number) =>
      sessionDataAt(clock.now(), fields, minutes);

    const tombstones = async ({ db }: SqlDatabase) =>
      (await db.selectFrom('session_tombstones').selectAll().orderBy('sid').execute()).map((row) => ({
        sid: row.sid,
        expiresAt: row.expires_at,
      }));
    const countSessions = async ({ db }: SqlDatabase) =>
      (await db.selectFrom('sessions').select('sid').execute()).length;

    beforeEach(async () => {
      clock = createTestClock();
      sql = await backend.open();
      sqlStore = new SqlSessionStore(sql.database, clock);
      store = sessionCalls(sqlStore);
      peer = sessionCalls(new SqlSessionStore(await sql.openPeer(), clock));
    });
    afterEach(() => sql.close());

    it('keeps no session data once an id is ended, whatever a late save or touch tries', async () => {
      await store.set('gone', data({ signedIn: { userId: 1 } }));
      await store.destroy('gone');
      await peer.set('gone', data({ signedIn: { userId: 1 } }));
      await store.touch('gone', data({ signedIn: { userId: 1 } }));
      expect(await countSessions(sql.database)).toBe(0);
      expect(await tombstones(sql.database)).toEqual([{ sid: 'gone', expiresAt: expect.any(Number) }]);
    });

    it('writes a touch only when it moves the deadline on by more than a minute, never back', async () => {
      const expiryOf = async (sid: string) =>
        (
          await sql.database.db
            .selectFrom('sessions')
            .select('expires_at')
            .where('sid', '=', sid)
            .executeTakeFirstOrThrow()
        ).expires_at;
      await store.set('busy', data({ step: 1 }, 30));
      const saved = await expiryOf('busy');
      clock.advance(59_000);
      await peer.touch('busy', data({ step: 1 }, 30));
      expect(await expiryOf('busy')).toBe(saved);
      clock.advance(2000);
      await peer.touch('busy', data({ step: 1 }, 30));
      expect(await expiryOf('busy')).toBe(saved + 61_000);
      await peer.touch('busy', data({ step: 1 }, 10));
      expect(await expiryOf('busy')).toBe(saved + 61_000);
    });

    it('sends no touch at all when the deadline its request read is less than a minute behind', async () => {
      const setExpiry = (expiresAt: number) =>
        sql.database.db
          .updateTable('sessions')
          .set({ expires_at: expiresAt })
          .where('sid', '=', 'page')
          .execute();
      const expiryOf = async () =>
        (
          await sql.database.db
            .selectFrom('sessions')
            .select('expires_at')
            .where('sid', '=', 'page')
            .executeTakeFirstOrThrow()
        ).expires_at;
      await store.set('page', data({ step: 1 }, 30));
      const saved = await expiryOf();
      clock.advance(30_000);
      await store.get('page');
      // Moved back behind the store's back after the read: a touch that sent its UPDATE would move it on.
      await setExpiry(saved - 5 * MINUTE_MS);
      await store.touch('page', data({ step: 1 }, 30));
      expect(await expiryOf()).toBe(saved - 5 * MINUTE_MS);
      // The note is the one request's: the next touch without a read of its own sends its UPDATE.
      await store.touch('page', data({ step: 1 }, 30));
      expect(await expiryOf()).toBe(saved + 30_000);
    });

    it('keeps a tombstone until the session’s own expiry, then sweeps it', async () => {
      await store.set('long', data({}, 120));
      await store.destroy('long');
      const expiresAt = clock.now().getTime() + 120 * MINUTE_MS;
      expect(await tombstones(sql.database)).toEqual([{ sid: 'long', expiresAt }]);

      clock.advanceMinutes(119);
      await store.get('anything');
      await store.set('long', data({}));
      expect(await store.get('long')).toBeNull();

      clock.advanceMinutes(2); // past its expiry: the housekeeping timer's next pass deletes it
      for (const task of createExpiredSessionTasks({ sessions: sqlStore, clock })) await task.runBatch();
      expect(await tombstones(sql.database)).toEqual([]);
    });

    it('deletes nothing on a request’s way: expired rows wait for the housekeeping timer', async () => {
      // A sweep on a request once made that request (and every other) wait for all the deletes.
      await store.set('old', data({}, 1));
      await store.set('ended', data({}, 1));
      await store.destroy('ended');
      clock.advanceMinutes(60);
      await store.set('fresh', data({}));
      expect(await store.get('fresh')).not.toBeNull();
      expect(await store.get('old')).toBeNull();
      expect(await countSessions(sql.database)).toBe(2);
      expect(await tombstones(sql.database)).toHaveLength(1);
    });

    it('keeps a tombstone at least 30 minutes, however close the session was to its end', async () => {
      await store.set('short', data({}, 1));
      await store.destroy('short');
      expect(await tombstones(sql.database)).toEqual([
        { sid: 'short', expiresAt: clock.now().getTime() + 30 * MINUTE_MS },
      ]);
    });
  });
}

describeSessionStoreContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisSessionStore(redis, { keyPrefix, clock }),
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

describeAccountSessionsContract(
  'redis',
  async () => {
    const clock = createTestClock();
    const pair = await openRedisPair((redis, keyPrefix) =>
      createRedisSessionStore(redis, { keyPrefix, clock }),
    );
    return { store: pair.store, peer: pair.peer, clock, elapse: elapseOnRedis(clock), close: pair.close };
  },
  { skip: !isRedisAvailable() },
);

/** The account index the Redis store keeps beside the sessions: it must not grow without end. */
describe.skipIf(!isRedisAvailable())('the Redis session store’s index of sessions by account', () => {
  const keyPrefix = randomKeyPrefix();
  let redis: Awaited<ReturnType<typeof connectTestRedis>>;
  let clock: TestClock;
  let store: ReturnType<typeof sessionCalls>;
  const index = `${keyPrefix}user-sessions:1`;
  const signedIn = (lifetimeMinutes: number) => {
    const now = clock.now().getTime();
    return sessionDataAt(
      clock.now(),
      { signedIn: { userId: 1, signedInAt: now, lastSeenAt: now, previousLoginAt: null } },
      lifetimeMinutes,
    );
  };

  beforeEach(async () => {
    redis = await connectTestRedis();
    clock = createTestClock();
    store = sessionCalls(createRedisSessionStore(redis, { keyPrefix, clock }));
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.destroy();
  });

  it('drops members past their expiry at the next save, and lives as long as its latest member', async () => {
    for (let i = 0; i < 5; i += 1) await store.set(`old-${i}`, signedIn(1));
    expect(await redis.zCard(index)).toBe(5);
    clock.advanceMinutes(2);
    await store.set('fresh', signedIn(30));
    expect(await redis.zRange(index, 0, -1)).toEqual(['fresh']);
    const ttl = await redis.pTTL(index);
    expect(ttl).toBeGreaterThan(29 * MINUTE_MS);
    expect(ttl).toBeLessThanOrEqual(30 * MINUTE_MS);
  });

  it('files nothing for a session that is not signed in', async () => {
    await store.set('visitor', sessionDataAt(clock.now(), { channel: 'sms' }));
    expect(await redis.exists(index)).toBe(0);
  });
});
