import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../src/paths.js';
import { createSqlAuditLog } from '../../../src/stores/sql/audit-log.js';
import { createSqlCodeEntryCeiling } from '../../../src/stores/sql/code-entry-ceiling.js';
import { openSqlDatabase, type SqlDatabase } from '../../../src/stores/sql/database.js';
import { applyMigrations, type Migration } from '../../../src/stores/sql/migrate.js';
import { MIGRATIONS } from '../../../src/stores/sql/migrations/index.js';
import { createSqlSendingStore } from '../../../src/stores/sql/sending-store.js';
import { SqlSessionStore } from '../../../src/stores/sql/session-store.js';
import { createSqlUserStore } from '../../../src/stores/sql/user-store.js';
import { createTestClock } from '../../helpers/clock.js';
import { createLegacySqliteDatabase } from '../../helpers/legacy-sqlite.js';
import { onTestPostgres, randomSchemaName, sqlBackends } from '../../helpers/sql.js';
import { TEST_DATABASE_URL } from '../../helpers/services.js';
import { sessionCalls } from '../contracts/session-store.js';

/** `npm run admin -- list` from the TypeScript source, as its own process, on the given file. */
function runAdminCli(cwd: string, databasePath: string): Promise<{ status: number | null; stdout: string }> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = spawn(
    process.execPath,
    ['--import', tsx, join(PROJECT_ROOT, 'src', 'admin', 'cli.ts'), 'list'],
    {
      cwd,
      env: { PATH: process.env.PATH, NODE_ENV: 'test', DATABASE_PATH: databasePath },
    },
  );
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout })));
}

const recordedNames = async (database: SqlDatabase) =>
  (await database.db.selectFrom('schema_migrations').select('name').orderBy('name').execute()).map(
    (row) => row.name,
  );

for (const backend of sqlBackends()) {
  describe.skipIf(backend.skip)(`migrations on ${backend.name}`, () => {
    const clock = createTestClock();

    it('builds every table of a new database and records each migration once', async () => {
      const test = await backend.open();
      try {
        expect(await recordedNames(test.database)).toEqual(MIGRATIONS.map((migration) => migration.name));
        // Opening it again (a restart, a second instance) applies nothing.
        const again = await test.openPeer();
        expect(await applyMigrations(again.db, again.dialect)).toEqual([]);
        expect(await recordedNames(again)).toEqual(MIGRATIONS.map((migration) => migration.name));
      } finally {
        await test.close();
      }
    });

    it('010 backfills each account that had a code accepted, and the breaker history from the codes verified', async () => {
      const test = await backend.open();
      const { db, dialect } = test.database;
      const hour = Math.floor(clock.now().getTime() / 3_600_000);
      try {
        // The database as it was before 010: accounts, challenges and hourly counts, no holders.
        await db.schema.dropTable('verified_number_accounts').execute();
        await db.deleteFrom('schema_migrations').where('name', '=', '010-fraud-verified-accounts').execute();
        const users = createSqlUserStore(test.database, clock);
        for (const username of ['alice', 'bob']) {
          await users.create({ username, passwordHash: 'x', phone: '+12025550142', preferredChannel: 'sms' });
        }
        const [alice, bob] = (await users.list()).sort((a, b) => a.id - b.id).map((user) => user.id);
        const challenge = (
          id: string,
          userId: number,
          closedAt: number | null,
          reason: 'accepted' | 'used_up' | null,
        ) =>
          db
            .insertInto('challenges')
            .values({
              id,
              user_id: userId,
              scope: 'login',
              phone_e164: '+12025550142',
              channel: 'sms',
              provider: 'console',
              sent_at: 1,
              expires_at: 2,
              closed_at: closedAt,
              close_reason: reason,
            })
            .execute();
        await challenge('early', alice!, 1_000, 'accepted');
        await challenge('late', alice!, 5_000, 'accepted');
        await challenge('wrong', bob!, 2_000, 'used_up');
        await challenge('open', bob!, null, null);
        await db
          .insertInto('sending_hourly')
          .values([
            { country: 'US', event: 'verified', hour, count: 4 },
            { country: 'US', event: 'sent', hour, count: 9 },
          ])
          .execute();

        expect(await applyMigrations(db, dialect)).toEqual(['010-fraud-verified-accounts']);
        expect(await db.selectFrom('verified_number_accounts').selectAll().execute()).toEqual([
          { phone_e164: '+12025550142', user_id: alice, first_verified_at: 1_000, last_verified_at: 5_000 },
        ]);
        const sending = createSqlSendingStore(test.database, clock);
        expect(await sending.highestDailyCount('US', 'verified_number', new Date(0))).toBe(4);
        expect(await sending.highestDailyCount('US', 'verified', new Date(0))).toBe(4);
      } finally {
        await test.close();
      }
    });

    it('011 counts every account made before it as having proven its number, from when it was made', async () => {
      const test = await backend.open();
      const { db, dialect } = test.database;
      try {
        // The database as it was before 011: accounts without the column.
        await db.schema.dropIndex('users_unproven_created').execute();
        await db.schema.alterTable('users').dropColumn('phone_verified_at').execute();
        await db.deleteFrom('schema_migrations').where('name', '=', '011-proven-phones').execute();
        await db
          .insertInto('users')
          .values({
            username: 'alice',
            username_key: 'alice',
            password_hash: 'x',
            phone_e164: '+12025550142',
            preferred_channel: 'sms',
            created_at: 1_000,
          } as never)
          .execute();

        expect(await applyMigrations(db, dialect)).toEqual(['011-proven-phones']);
        const alice = await createSqlUserStore(test.database, clock).findByUsername('alice');
        expect(alice?.phoneVerifiedAt).toEqual(new Date(1_000));
        // An account made from now on starts unproven.
        const bob = await createSqlUserStore(test.database, clock).create({
          username: 'bob',
          passwordHash: 'y',
          phone: '+12025550143',
          preferredChannel: 'voice',
        });
        expect(bob?.phoneVerifiedAt).toBeNull();
      } finally {
        await test.close();
      }
    });

    it('014 gives existing audit events their name key, and deletions raise the floor of new ids from then on', async () => {
      const test = await backend.open();
      const { db, dialect } = test.database;
      try {
        // The database as it was before 014: events without the key, no floor.
        if (dialect === 'sqlite') await sql`DROP TRIGGER users_deleted_raise_id_floor`.execute(db);
        await db.schema.dropTable('user_id_floor').execute();
        await db.schema.dropIndex('audit_events_username_key').execute();
        await db.schema.alterTable('audit_events').dropColumn('username_key').execute();
        await db.deleteFrom('schema_migrations').where('name', '=', '014-account-deletion').execute();
        for (const username of ['Ａｄａ', 'ben', null]) {
          await db
            .insertInto('audit_events')
            .values({ at: 1_000, type: 'login_password_failed', username } as never)
            .execute();
        }

        expect(await applyMigrations(db, dialect)).toEqual(['014-account-deletion']);
        const keys = await db.selectFrom('audit_events').select('username_key').orderBy('id').execute();
        expect(keys.map((row) => row.username_key)).toEqual(['ada', 'ben', null]);
        const users = createSqlUserStore(test.database, clock);
        const newest = (await users.create({
          username: 'cai',
          passwordHash: 'x',
          phone: '+12025550142',
          preferredChannel: 'sms',
        }))!;
        expect(await users.deleteAccount(newest.id)).toBe('deleted');
        const next = await users.create({
          username: 'dee',
          passwordHash: 'x',
          phone: '+12025550143',
          preferredChannel: 'sms',
        });
        expect(next!.id).toBeGreaterThan(newest.id);
      } finally {
        await test.close();
      }
    });

    it('013 files each session kept from before under the account it is signed in as, and enables every account', async () => {
      const test = await backend.open();
      const { db, dialect } = test.database;
      try {
        // The database as it was before 013: sessions without an account column, no disabling.
        await db.schema.dropIndex('sessions_user_id').execute();
        await db.schema.alterTable('sessions').dropColumn('user_id').execute();
        await db.schema.alterTable('users').dropColumn('disabled_at').execute();
        await db.deleteFrom('schema_migrations').where('name', '=', '013-account-sessions').execute();
        const users = createSqlUserStore(test.database, clock);
        const alice = await users.create({
          username: 'alice',
          passwordHash: 'x',
          phone: '+12025550142',
          preferredChannel: 'sms',
        });
        const now = clock.now().getTime();
        const kept = (sid: string, data: object) =>
          db
            .insertInto('sessions')
            .values({ sid, data: JSON.stringify(data), expires_at: now + 60_000 } as never)
            .execute();
        await kept('alice-signed-in', {
          cookie: {},
          signedIn: { userId: alice!.id, signedInAt: now, lastSeenAt: now, previousLoginAt: null },
        });
        await kept('waiting-for-code', {
          cookie: {},
          pendingLogin: { userId: alice!.id, passwordVerifiedAt: now },
        });

        expect(await applyMigrations(db, dialect)).toEqual(['013-account-sessions']);
        expect(await db.selectFrom('sessions').select(['sid', 'user_id']).orderBy('sid').execute()).toEqual([
          { sid: 'alice-signed-in', user_id: alice!.id },
          { sid: 'waiting-for-code', user_id: null },
        ]);
        const sessions = new SqlSessionStore(test.database, clock);
        expect((await sessions.listForUser(alice!.id)).map((entry) => entry.userAgent)).toEqual([null]);
        expect(await sessions.endAllForUser(alice!.id)).toBe(1);
        expect((await users.findByUsername('alice'))?.disabledAt).toBeNull();
      } finally {
        await test.close();
      }
    });

    it('leaves nothing of a migration that fails half way, and keeps the ones before it', async () => {
      const test = await backend.open();
      const failing: Migration[] = [
        {
          name: '900-works',
          up: (db) => db.schema.createTable('works').addColumn('id', 'integer').execute(),
        },
        {
          name: '901-breaks',
          async up(db) {
            await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
            await sql`SELECT * FROM no_such_table`.execute(db);
          },
        },
      ];
      try {
        await expect(applyMigrations(test.database.db, test.database.dialect, failing)).rejects.toThrow(
          /no_such_table/,
        );
        expect(await recordedNames(test.database)).toContain('900-works');
        expect(await recordedNames(test.database)).not.toContain('901-breaks');
        await expect(sql`SELECT * FROM half_done`.execute(test.database.db)).rejects.toThrow(/half_done/);
      } finally {
        await test.close();
      }
    });

    it('refuses a list of migrations out of order, before touching the database', async () => {
      const test = await backend.open();
      try {
        const noop = async () => undefined;
        await expect(
          applyMigrations(test.database.db, test.database.dialect, [
            { name: '902-b', up: noop },
            { name: '901-a', up: noop },
          ]),
        ).rejects.toThrow(/ascending order/);
      } finally {
        await test.close();
      }
    });
  });
}

describe('two instances starting at once on a new database', () => {
  it('on SQLite (two processes): both start, and each migration runs once', async () => {
    // Two processes, as the site and `npm run admin` are: better-sqlite3 waits for a lock with the
    // whole process blocked, so two openings inside one process would only wait for each other.
    const folder = mkdtempSync(join(tmpdir(), 'keyhole-migrate-'));
    const sqlitePath = join(folder, 'app.db');
    try {
      const runs = await Promise.all([runAdminCli(folder, sqlitePath), runAdminCli(folder, sqlitePath)]);
      for (const run of runs)
        expect(run).toMatchObject({ status: 0, stdout: expect.stringMatching(/No account is an admin yet/) });
      const database = await openSqlDatabase({ sqlitePath });
      expect(await recordedNames(database)).toEqual(MIGRATIONS.map((migration) => migration.name));
      await database.close();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it.skipIf(sqlBackends()[1]!.skip)('on PostgreSQL: both start, and each migration runs once', async () => {
    const schema = randomSchemaName();
    await onTestPostgres((client) => client.query(`CREATE SCHEMA ${schema}`));
    const open = () =>
      openSqlDatabase({ postgresUrl: TEST_DATABASE_URL, schema, poolSize: 2, onError: () => undefined });
    try {
      const instances = await Promise.all([open(), open(), open()]);
      expect(await recordedNames(instances[0]!)).toEqual(MIGRATIONS.map((migration) => migration.name));
      await Promise.all(instances.map((instance) => instance.close()));
    } finally {
      await onTestPostgres((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    }
  });
});

describe('a SQLite database made by the site before the TypeScript migrations', () => {
  // Threat: an upgrade that loses what people saved, or a start that fails on an existing file.
  let folder: string;
  let sqlitePath: string;
  const clock = createTestClock();

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'keyhole-upgrade-'));
    sqlitePath = join(folder, 'app.db');
  });
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  /** Accounts, an audit event and a signed-in session, written as the old site wrote them. */
  function createOldSite(usernames: string[], options: { skip?: readonly string[] } = {}) {
    const old = createLegacySqliteDatabase(sqlitePath, options);
    const insertUser = old.prepare(
      `INSERT INTO users (username, password_hash, phone_e164, preferred_channel, created_at, is_admin)
       VALUES (?, 'argon2-hash', '+12025550142', 'sms', ?, ?)`,
    );
    usernames.forEach((username, i) => insertUser.run(username, 1_700_000_000_000 + i, i === 0 ? 1 : 0));
    old
      .prepare("INSERT INTO audit_events (at, type, user_id, username) VALUES (?, 'login_succeeded', 1, ?)")
      .run(1_700_000_100_000, usernames[0]);
    old
      .prepare('INSERT INTO sessions (sid, data, expires_at) VALUES (?, ?, ?)')
      .run(
        'still-signed-in',
        JSON.stringify({ cookie: {}, signedIn: { userId: 1 } }),
        clock.now().getTime() + 60 * 60_000,
      );
    old.close();
  }

  it('is recognised: only the newer migrations run, and every account, event and session is still there', async () => {
    createOldSite(['Alice', 'bob']);
    const database = await openSqlDatabase({ sqlitePath });
    try {
      expect(await recordedNames(database)).toEqual([
        '001-initial.sql',
        '002-admin-role.sql',
        '003-session-tombstones.sql',
        '004-fraud-guard.sql',
        '005-challenges.sql',
        '006-admin-seed-names.sql',
        '007-username-keys',
        '008-challenge-order',
        '010-fraud-verified-accounts.sql',
        '011-proven-phones',
        '012-email-and-tokens',
        '013-account-sessions',
        '014-account-deletion',
        '015-factors',
        '016-api-keys',
        '017-api-verifications',
      ]);
      const users = createSqlUserStore(database, clock);
      expect((await users.list()).map((user) => user.username).sort()).toEqual(['Alice', 'bob']);
      // Their accounts proved their numbers at every login: they count as proven (011).
      expect(await users.findByUsername('alice')).toMatchObject({
        username: 'Alice',
        isAdmin: true,
        phoneVerifiedAt: expect.any(Date),
      });
      expect(await users.findByUsername('ＢＯＢ')).toMatchObject({ username: 'bob', isAdmin: false });
      expect(await createSqlAuditLog(database, clock).recent()).toMatchObject([
        { type: 'login_succeeded', username: 'Alice' },
      ]);
      const sessions = sessionCalls(new SqlSessionStore(database, clock));
      expect(await sessions.get('still-signed-in')).toMatchObject({ signedIn: { userId: 1 } });
      // The new rule holds for the old accounts too.
      expect(
        await users.create({
          username: 'ａｌｉｃｅ',
          passwordHash: 'x',
          phone: '+12025550143',
          preferredChannel: 'sms',
        }),
      ).toBeNull();
    } finally {
      await database.close();
    }
  });

  it("keeps the fraud guard's facts of a site that had it: a suspension, a verified number and its holder, today's counts", async () => {
    createOldSite(['alice']);
    const old = new Database(sqlitePath);
    old
      .prepare('INSERT INTO code_entry_failures (user_id, consecutive, suspended_at) VALUES (1, 100, 1)')
      .run();
    old.prepare("INSERT INTO verified_numbers VALUES ('+12025550142', 1, 1)").run();
    old.prepare("INSERT INTO verified_number_accounts VALUES ('+12025550142', 1, 1, 1)").run();
    old
      .prepare("INSERT INTO sending_hourly VALUES ('US', 'sent', ?, 7)")
      .run(Math.floor(clock.now().getTime() / 3_600_000));
    old.close();

    const database = await openSqlDatabase({ sqlitePath });
    try {
      expect(await createSqlCodeEntryCeiling(database, clock).isSuspended(1)).toBe(true);
      const sending = createSqlSendingStore(database, clock);
      expect(await sending.isVerifiedNumber('+12025550142', new Date(0))).toBe(true);
      expect(await sending.hasAccountVerified('+12025550142', 1)).toBe(true);
      await sending.countEvent('US', 'sent');
      expect(await sending.countsSince(clock.now())).toEqual([{ country: 'US', event: 'sent', count: 8 }]);
    } finally {
      await database.close();
    }
  });

  it('gives a site from before the fraud guard its tables at the next start, after 005 and 006', async () => {
    createOldSite(['alice'], { skip: ['004-fraud-guard.sql', '010-fraud-verified-accounts.sql'] });
    const database = await openSqlDatabase({ sqlitePath });
    try {
      expect(await recordedNames(database)).toEqual([
        '001-initial.sql',
        '002-admin-role.sql',
        '003-session-tombstones.sql',
        '004-fraud-guard',
        '005-challenges.sql',
        '006-admin-seed-names.sql',
        '007-username-keys',
        '008-challenge-order',
        '010-fraud-verified-accounts',
        '011-proven-phones',
        '012-email-and-tokens',
        '013-account-sessions',
        '014-account-deletion',
        '015-factors',
        '016-api-keys',
        '017-api-verifications',
      ]);
      const ceiling = createSqlCodeEntryCeiling(database, clock, 1);
      expect(await ceiling.recordFailure(1)).toEqual({ consecutive: 1, suspendedNow: true });
      const sending = createSqlSendingStore(database, clock);
      expect(await sending.markVerified('+12025550142', 1)).toEqual({ firstToday: true });
      expect(await sending.isVerifiedNumber('+12025550142', clock.now())).toBe(true);
      expect(await sending.hasAccountVerified('+12025550142', 1)).toBe(true);
    } finally {
      await database.close();
    }
  });

  it('gives a site from before verified accounts the holders its accepted codes show, and its breaker history', async () => {
    createOldSite(['alice', 'bob'], { skip: ['010-fraud-verified-accounts.sql'] });
    const old = new Database(sqlitePath);
    const hour = Math.floor(clock.now().getTime() / 3_600_000);
    const addChallenge = old.prepare(
      `INSERT INTO challenges (id, user_id, scope, phone_e164, channel, provider, sent_at, expires_at, closed_at, close_reason)
       VALUES (?, ?, 'login', ?, 'sms', 'console', 1, 2, ?, ?)`,
    );
    addChallenge.run('accepted-early', 1, '+12025550142', 1_000, 'accepted');
    addChallenge.run('accepted-late', 1, '+12025550142', 5_000, 'accepted');
    addChallenge.run('wrong-codes', 2, '+12025550142', 2_000, 'used_up');
    old.prepare("INSERT INTO sending_hourly VALUES ('US', 'verified', ?, 3)").run(hour);
    old.close();

    const database = await openSqlDatabase({ sqlitePath });
    try {
      expect(await recordedNames(database)).toContain('010-fraud-verified-accounts');
      const sending = createSqlSendingStore(database, clock);
      expect(await sending.hasAccountVerified('+12025550142', 1)).toBe(true);
      expect(await sending.hasAccountVerified('+12025550142', 2)).toBe(false);
      expect(await sending.highestDailyCount('US', 'verified_number', new Date(0))).toBe(3);
    } finally {
      await database.close();
    }
  });

  it('keeps both accounts whose names only now count as one: the older keeps the name, the newer logs in as name#id', async () => {
    // COLLATE NOCASE folded only ASCII case, so a full-width name stored as it was typed could sit
    // beside its ASCII twin. Neither may be lost, nor may either take over the other.
    createOldSite(['alice', 'ａｌｉｃｅ', 'ALİCE']);
    const database = await openSqlDatabase({ sqlitePath });
    try {
      const users = createSqlUserStore(database, clock);
      const all = await users.list();
      expect(all.map((user) => user.username).sort()).toEqual(['ALİCE', 'alice', 'ａｌｉｃｅ'].sort());
      const older = all.find((user) => user.username === 'alice')!;
      const newer = all.find((user) => user.username === 'ａｌｉｃｅ')!;
      expect(await users.findByUsername('alice')).toEqual(older);
      expect(await users.findByUsername('ａｌｉｃｅ')).toEqual(older);
      expect(await users.findByUsername(`alice#${newer.id}`)).toEqual(newer);
      // A name unlike the others keeps its own key.
      expect((await users.findByUsername('ALİCE'))?.username).toBe('ALİCE');
      const keys = await database.db.selectFrom('users').select('username_key').execute();
      expect(new Set(keys.map((row) => row.username_key)).size).toBe(3);
    } finally {
      await database.close();
    }
  });
});
