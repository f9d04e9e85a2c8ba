import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type session from 'express-session';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/open.js';
import { SqliteSessionStore } from '../../src/http/session-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';

const MINUTE_MS = 60_000;

/** express-session's Store methods, as promises. */
function storeCalls(store: SqliteSessionStore) {
  return {
    get: (sid: string) =>
      new Promise<session.SessionData | null | undefined>((resolve, reject) =>
        store.get(sid, (error, data) => (error ? reject(error) : resolve(data))),
      ),
    set: (sid: string, data: session.SessionData) =>
      new Promise<void>((resolve, reject) =>
        store.set(sid, data, (error) => (error ? reject(error) : resolve())),
      ),
    touch: (sid: string, data: session.SessionData) =>
      new Promise<void>((resolve, reject) =>
        store.touch(sid, data, (error) => (error ? reject(error) : resolve())),
      ),
    destroy: (sid: string) =>
      new Promise<void>((resolve, reject) =>
        store.destroy(sid, (error) => (error ? reject(error) : resolve())),
      ),
    retire: (sid: string) =>
      new Promise<boolean | undefined>((resolve, reject) =>
        store.retireSession(sid, (error, wasLive) => (error ? reject(error) : resolve(wasLive))),
      ),
  };
}

describe('the SQLite session store', () => {
  let folder: string;
  let db: Db;
  let clock: TestClock;
  let store: ReturnType<typeof storeCalls>;

  /** A session as express-session hands it to the store, expiring `minutes` from the test clock. */
  function sessionData(fields: Record<string, unknown>, minutes = 30): session.SessionData {
    return {
      cookie: { expires: new Date(clock.now().getTime() + minutes * MINUTE_MS), originalMaxAge: null },
      ...fields,
    } as unknown as session.SessionData;
  }
  const tombstones = () => db.prepare('SELECT sid, expires_at FROM session_tombstones').all();

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'session-store-'));
    db = openDatabase(join(folder, 'app.db'));
    clock = createTestClock();
    store = storeCalls(new SqliteSessionStore(db, clock));
  });
  afterEach(() => {
    db.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('keeps a session until it is destroyed', async () => {
    await store.set('alive', sessionData({ flash: { kind: 'info', message: 'hello' } }));
    expect(await store.get('alive')).toMatchObject({ flash: { message: 'hello' } });
    await store.destroy('alive');
    expect(await store.get('alive')).toBeNull();
  });

  describe('after a session is destroyed (logout, or an id replaced by a new one)', () => {
    // Threat: a request that was still running when the person logged out saves the session back
    // as it ends, and the logged-out cookie works again.
    beforeEach(async () => {
      await store.set('gone', sessionData({ signedIn: { userId: 1 } }));
      await store.destroy('gone');
    });

    it('never writes that id again: a late save and a late touch leave nothing to find', async () => {
      await store.set('gone', sessionData({ signedIn: { userId: 1 } }));
      await store.touch('gone', sessionData({ signedIn: { userId: 1 } }));
      expect(await store.get('gone')).toBeNull();
      expect(db.prepare('SELECT COUNT(*) AS n FROM sessions').get()).toEqual({ n: 0 });
    });

    it('keeps no session data in the tombstone', () => {
      expect(tombstones()).toEqual([{ sid: 'gone', expires_at: expect.any(Number) }]);
    });

    it('reports the id as no longer live when a slow request then tries to replace it', async () => {
      expect(await store.retire('gone')).toBe(false);
    });
  });

  it('retires a live id exactly once: the first caller hears "live", every later one does not', async () => {
    await store.set('once', sessionData({ pendingLogin: { userId: 1 } }));
    expect(await store.retire('once')).toBe(true);
    expect(await store.retire('once')).toBe(false);
    await store.set('once', sessionData({ signedIn: { userId: 1 } }));
    expect(await store.get('once')).toBeNull();
  });

  it('keeps a tombstone until the session’s own expiry, then sweeps it', async () => {
    await store.set('long', sessionData({}, 120));
    await store.destroy('long');
    const expiresAt = clock.now().getTime() + 120 * MINUTE_MS;
    expect(tombstones()).toEqual([{ sid: 'long', expires_at: expiresAt }]);

    clock.advanceMinutes(119);
    await store.get('anything');
    await store.set('long', sessionData({}));
    expect(await store.get('long')).toBeNull();

    clock.advanceMinutes(11); // past its expiry, and past the sweep's 10-minute interval
    await store.get('anything');
    expect(tombstones()).toEqual([]);
  });

  it('keeps a tombstone at least 30 minutes, however close the session was to its end', async () => {
    await store.set('short', sessionData({}, 1));
    await store.destroy('short');
    expect(tombstones()).toEqual([{ sid: 'short', expires_at: clock.now().getTime() + 30 * MINUTE_MS }]);
  });

  describe('while another process holds the write lock', () => {
    let other: Database.Database;
    beforeEach(() => {
      other = new Database(join(folder, 'app.db'));
      other.exec('BEGIN IMMEDIATE');
    });
    afterEach(() => {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    });

    it('still reads sessions', async () => {
      other.exec('ROLLBACK');
      await store.set('reader', sessionData({ channel: 'sms' }));
      other.exec('BEGIN IMMEDIATE');
      expect(await store.get('reader')).toMatchObject({ channel: 'sms' });
    });

    it('gives up on a save within half a second, with SQLite’s busy error', async () => {
      const startedAt = Date.now();
      await expect(store.set('blocked', sessionData({}))).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
      expect(Date.now() - startedAt).toBeLessThan(1000);
    });

    it('saves once the lock is released within that time', async () => {
      const saving = store.set('patient', sessionData({ channel: 'voice' }));
      setTimeout(() => other.exec('ROLLBACK'), 50);
      await saving;
      expect(await store.get('patient')).toMatchObject({ channel: 'voice' });
    });

    it('skips the rolling idle refresh without an error', async () => {
      await expect(store.touch('someone', sessionData({}))).resolves.toBeUndefined();
    });
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
