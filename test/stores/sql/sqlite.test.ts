import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createSqlUserStore } from '../../../src/stores/sql/user-store.js';
import { openTestSqliteDatabase } from '../../helpers/sql.js';

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
});
