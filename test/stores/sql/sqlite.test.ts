import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createSqlAuditLog } from '../../../src/stores/sql/audit-log.js';
import { createSqlCodeEntryCeiling } from '../../../src/stores/sql/code-entry-ceiling.js';
import { SqlSessionStore } from '../../../src/stores/sql/session-store.js';
import { createSqlUserStore } from '../../../src/stores/sql/user-store.js';
import { insertAlice, openTestSqliteDatabase } from '../../helpers/sql.js';

// Every page reads the session and the account: compiling the same SQL on each request was a
// measurable share of a page's CPU (see src/stores/sql/database.ts).
describe('SQLite statements', () => {
  afterEach(() => vi.restoreAllMocks());

  it('are compiled once per SQL text and run again, with each run’s own parameters', async () => {
    const prepare = vi.spyOn(Database.prototype, 'prepare');
    const sqlite = await openTestSqliteDatabase();
    try {
      const users = createSqlUserStore(sqlite.database, systemClock);
      const alice = await users.create({
        username: 'alice',
        passwordHash: 'x',
        phone: '+12025550142',
        preferredChannel: 'sms',
      });
      const bob = await users.create({
        username: 'bob',
        passwordHash: 'y',
        phone: '+12025550143',
        preferredChannel: 'voice',
      });
      prepare.mockClear();

      expect((await users.findById(alice!.id))?.username).toBe('alice');
      expect((await users.findById(bob!.id))?.username).toBe('bob');
      expect(await users.findById(9999)).toBeNull();
      expect((await users.findById(alice!.id))?.preferredChannel).toBe('sms');

      expect(prepare).toHaveBeenCalledTimes(1);
    } finally {
      await sqlite.close();
    }
  });

  it('run in WAL mode, with every commit on the disk before it is acknowledged', async () => {
    // Threat: a power cut losing an account, a password change or an audit event the site had
    // already confirmed (NORMAL syncs only at checkpoints).
    const sqlite = await openTestSqliteDatabase();
    try {
      const pragma = async (name: string) =>
        Object.values((await sql.raw(`PRAGMA ${name}`).execute(sqlite.database.db)).rows[0] as object)[0];
      expect(await pragma('journal_mode')).toBe('wal');
      expect(await pragma('synchronous')).toBe(2); // FULL
    } finally {
      await sqlite.close();
    }
  });

  describe('commits of short-lived counters', () => {
    // Threat model: a power cut may roll back the last moments of counters and audit lines (as a
    // Redis that keeps nothing would); it must never roll back an account or an ended session.
    let sqlite: Awaited<ReturnType<typeof openTestSqliteDatabase>>;
    let ran: string[];
    beforeEach(async () => {
      sqlite = await openTestSqliteDatabase();
      await insertAlice(sqlite.database);
      ran = [];
      const statementPrototype = Object.getPrototypeOf(new Database(':memory:').prepare('SELECT 1')) as {
        run: (...args: unknown[]) => unknown;
        all: (...args: unknown[]) => unknown;
      };
      for (const method of ['run', 'all'] as const) {
        const original = statementPrototype[method];
        vi.spyOn(statementPrototype, method).mockImplementation(function (this: { source: string }, ...args) {
          ran.push(this.source);
          return original.apply(this, args);
        });
      }
    });
    afterEach(() => sqlite.close());

    const synchronousAround = (statement: RegExp) => {
      const at = ran.findIndex((source) => statement.test(source));
      expect(at).toBeGreaterThanOrEqual(0);
      return [ran[at - 1] ?? '', ran[at + 1] ?? ''];
    };

    it('do not wait for the disk, and the connection waits again at once after', async () => {
      const audit = createSqlAuditLog(sqlite.database, systemClock);
      await audit.record({ type: 'code_failed', userId: 1, username: 'alice', ip: '203.0.113.5' });
      expect(synchronousAround(/^insert into "audit_events"/)).toEqual([
        'PRAGMA synchronous = NORMAL',
        'PRAGMA synchronous = FULL',
      ]);
      const ceiling = createSqlCodeEntryCeiling(sqlite.database, systemClock);
      // A write with RETURNING (run by all()) too.
      expect((await ceiling.recordFailure(1)).consecutive).toBe(1);
      expect(synchronousAround(/^insert into "code_entry_failures"/)).toEqual([
        'PRAGMA synchronous = NORMAL',
        'PRAGMA synchronous = FULL',
      ]);
      const rows = await sql.raw('PRAGMA synchronous').execute(sqlite.database.db);
      expect(Object.values(rows.rows[0] as object)[0]).toBe(2);
    });

    it('leave the connection waiting for the disk when the write fails', async () => {
      await expect(
        sqlite.database.db
          .insertInto('challenges')
          .values({ id: 'x' } as never)
          .execute(),
      ).rejects.toThrow();
      expect(synchronousAround(/^insert into "challenges"/)).toEqual([
        'PRAGMA synchronous = NORMAL',
        'PRAGMA synchronous = FULL',
      ]);
      const rows = await sql.raw('PRAGMA synchronous').execute(sqlite.database.db);
      expect(Object.values(rows.rows[0] as object)[0]).toBe(2);
    });

    it('never apply to accounts, ended sessions, or anything written in a transaction', async () => {
      const users = createSqlUserStore(sqlite.database, systemClock);
      await users.create({
        username: 'bob',
        passwordHash: 'y',
        phone: '+12025550143',
        preferredChannel: 'voice',
      });
      await sqlite.database.db
        .insertInto('session_tombstones')
        .values({ sid: 'ended', expires_at: Date.now() + 60_000 })
        .execute();
      await sqlite.database.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('audit_events')
          .values({ at: 0, type: 'login_ok', user_id: 1, username: 'alice', ip: null, detail: null })
          .execute();
      });
      expect(ran.filter((source) => source.startsWith('PRAGMA synchronous'))).toEqual([]);
    });

    it('never apply to a logout, a suspension, its lifting, or an admin grant’s audit line', async () => {
      const sessions = new SqlSessionStore(sqlite.database, systemClock);
      await new Promise<void>((resolve, reject) =>
        sessions.set('s1', { cookie: { expires: new Date(Date.now() + 60_000) } } as never, (error) =>
          error ? reject(error as Error) : resolve(),
        ),
      );
      ran = [];
      await new Promise<void>((resolve, reject) =>
        sessions.destroy('s1', (error) => (error ? reject(error as Error) : resolve())),
      );
      const ceiling = createSqlCodeEntryCeiling(sqlite.database, systemClock, 2);
      await ceiling.recordFailure(1);
      expect((await ceiling.recordFailure(1)).suspendedNow).toBe(true);
      expect(await ceiling.unlock(1)).toBe(true);
      await createSqlAuditLog(sqlite.database, systemClock).record({ type: 'admin_granted', userId: 1 });

      const relaxedWrites = ran.filter((_source, at) => ran[at - 1] === 'PRAGMA synchronous = NORMAL');
      expect(relaxedWrites).toEqual([
        // The counting of wrong codes only: not the suspension, the unlock or the grant's line.
        expect.stringMatching(/^insert into "code_entry_failures"/),
        expect.stringMatching(/^insert into "code_entry_failures"/),
      ]);
      expect(ran.some((source) => source.startsWith('delete from "sessions"'))).toBe(true);
      expect(ran.some((source) => /^update "code_entry_failures" set "suspended_at"/.test(source))).toBe(
        true,
      );
    });
  });
});
