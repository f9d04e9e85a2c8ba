import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAdminCommand, USAGE } from '../../src/admin/command.js';
import type { AuditLog } from '../../src/audit/log.js';
import { MAX_CONSECUTIVE_CODE_FAILURES } from '../../src/mfa/code-entry-ceiling.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { openSqlDatabase, type SqlDatabase } from '../../src/stores/sql/database.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { UserStore } from '../../src/users/store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { TEST_DATABASE_URL } from '../helpers/services.js';
import { isPostgresAvailable, onTestPostgres, randomSchemaName } from '../helpers/sql.js';

/**
 * Runs `npm run admin -- ...` as the operator would: the TypeScript source through tsx, from a
 * folder without a .env, so only the given environment counts.
 */
function runAdminScript(env: Record<string, string>, cwd = mkdtempSync(join(tmpdir(), 'mfa-admin-cwd-'))) {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const script = join(PROJECT_ROOT, 'src', 'admin', 'cli.ts');
  return (...args: string[]) =>
    spawnSync(process.execPath, ['--import', tsx, script, ...args], {
      cwd,
      env: { PATH: process.env.PATH, NODE_ENV: 'test', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
}

describe('npm run admin', () => {
  let folder: string;
  let databasePath: string;
  let database: SqlDatabase;
  let users: UserStore;
  let audit: AuditLog;
  let clock: TestClock;

  const addAccount = (username: string) =>
    users.create({ username, passwordHash: 'x', phone: '+12025550142', preferredChannel: 'sms' });
  const run = (args: string[], adminUsernames: string[] = []) =>
    runAdminCommand(args, {
      users,
      audit,
      adminUsernames,
      databaseName: databasePath,
      ceiling: createSqlCodeEntryCeiling(database, clock),
    });
  const roleEvents = async () =>
    (await audit.recent())
      .filter((event) => event.type === 'admin_granted' || event.type === 'admin_revoked')
      .map((event) => `${event.type} ${event.username}: ${event.detail}`);

  beforeEach(async () => {
    folder = mkdtempSync(join(tmpdir(), 'mfa-admin-cli-'));
    databasePath = join(folder, 'app.db');
    database = await openSqlDatabase({ sqlitePath: databasePath });
    clock = createTestClock();
    users = createSqlUserStore(database, clock);
    audit = createSqlAuditLog(database, clock);
  });
  afterEach(async () => {
    await database.close();
    rmSync(folder, { recursive: true, force: true });
  });

  describe('grant USERNAME', () => {
    it('makes the account an admin and records that the operator did it', async () => {
      await addAccount('alice');
      expect(await run(['grant', 'alice'])).toEqual({
        output: 'alice is now an admin: the secure area opens for them from their next page load.',
        exitCode: 0,
      });
      expect((await users.findByUsername('alice'))!.isAdmin).toBe(true);
      expect(await roleEvents()).toEqual(['admin_granted alice: by the operator command (npm run admin)']);
    });

    it('finds the account as login does, whatever the case or width typed', async () => {
      await addAccount('alice');
      expect((await run(['grant', 'ＡＬＩＣＥ'])).output).toMatch(/^alice is now an admin/);
      expect((await users.findByUsername('alice'))!.isAdmin).toBe(true);
    });

    it('says so, and writes nothing, when the account is an admin already', async () => {
      await addAccount('alice');
      await run(['grant', 'alice']);
      expect(await run(['grant', 'alice'])).toEqual({
        output: 'alice is already an admin; nothing changed.',
        exitCode: 0,
      });
      expect(await roleEvents()).toHaveLength(1);
    });

    it('fails with exit code 1 for a name no account has, naming the database it looked in', async () => {
      const result = await run(['grant', 'nobody']);
      expect(result).toEqual({
        output: `No account is named "nobody" in ${databasePath}. Register it on the site first, then run this again.`,
        exitCode: 1,
      });
      expect(await users.findByUsername('nobody')).toBeNull();
      expect(await roleEvents()).toEqual([]);
    });
  });

  describe('revoke USERNAME', () => {
    it('takes the role away and records it', async () => {
      await addAccount('alice');
      await run(['grant', 'alice']);
      expect(await run(['revoke', 'alice'])).toEqual({ output: 'alice is no longer an admin.', exitCode: 0 });
      expect((await users.findByUsername('alice'))!.isAdmin).toBe(false);
      expect((await roleEvents())[0]).toBe('admin_revoked alice: by the operator command (npm run admin)');
    });

    it('warns that ADMIN_USERNAMES would grant it again at the next start while it still lists the name', async () => {
      await addAccount('alice');
      await run(['grant', 'alice']);
      expect((await run(['revoke', 'alice'], ['alice'])).output).toBe(
        'alice is no longer an admin. ADMIN_USERNAMES still names alice, so the next start makes them an admin again: remove it there too.',
      );
    });

    it('says so for an account that is not an admin, and fails for one that does not exist', async () => {
      await addAccount('alice');
      expect(await run(['revoke', 'alice'])).toEqual({
        output: 'alice is not an admin; nothing changed.',
        exitCode: 0,
      });
      expect((await run(['revoke', 'nobody'])).exitCode).toBe(1);
    });
  });

  describe('list', () => {
    it('lists the admins, or says there are none and how to make one', async () => {
      await addAccount('alice');
      await addAccount('bob');
      expect(await run(['list'])).toEqual({
        output: 'No account is an admin yet. Make one with: npm run admin -- grant USERNAME',
        exitCode: 0,
      });
      await run(['grant', 'bob']);
      await run(['grant', 'alice']);
      expect(await run(['list'])).toEqual({ output: 'Admins (2): alice, bob', exitCode: 0 });
    });
  });

  it.each([
    [[], 'Say what to do.'],
    [['promote', 'alice'], 'Unknown command "promote".'],
    [['grant'], '"grant" needs a username.'],
    [['revoke', '  '], '"revoke" needs a username.'],
    [['grant', 'alice', 'bob'], '"grant" takes one username at a time.'],
    [['list', 'alice'], '"list" takes no username.'],
  ])('explains its usage and exits with 2 when given %j', async (args, problem) => {
    await addAccount('alice');
    expect(await run(args)).toEqual({ output: `${problem}\n${USAGE}`, exitCode: 2 });
    expect((await users.findByUsername('alice'))!.isAdmin).toBe(false);
  });

  it('runs as a script on the database named by DATABASE_PATH, with its exit code', async () => {
    await addAccount('alice');
    const admin = runAdminScript({ DATABASE_PATH: databasePath }, folder);

    const granted = admin('grant', 'alice');
    expect(granted.stdout.trim()).toBe(
      'alice is now an admin: the secure area opens for them from their next page load.',
    );
    expect(granted.status).toBe(0);
    expect((await users.findByUsername('alice'))!.isAdmin).toBe(true);

    const unknown = admin('grant', 'nobody');
    expect(unknown.stderr.trim()).toMatch(/^No account is named "nobody"/);
    expect(unknown.status).toBe(1);

    const misused = admin('grnat', 'alice');
    expect(misused.stderr).toContain(USAGE);
    expect(misused.status).toBe(2);
  });

  describe('unlock USERNAME', () => {
    it('lifts a suspension of code entry and records that the operator did it', async () => {
      const user = (await addAccount('alice'))!;
      const ceiling = createSqlCodeEntryCeiling(database, clock);
      for (let i = 0; i < MAX_CONSECUTIVE_CODE_FAILURES; i += 1) await ceiling.recordFailure(user.id);
      expect(await ceiling.isSuspended(user.id)).toBe(true);

      expect(await run(['unlock', 'ALICE'])).toEqual({
        output: 'alice can receive and enter codes again.',
        exitCode: 0,
      });
      expect(await ceiling.isSuspended(user.id)).toBe(false);
      expect((await audit.recent())[0]).toMatchObject({ type: 'code_entry_unlocked', username: 'alice' });
    });

    it('says when there is nothing to unlock, and refuses an unknown account', async () => {
      await addAccount('alice');
      expect(await run(['unlock', 'alice'])).toEqual({
        output: "alice's code entry is not suspended; nothing changed.",
        exitCode: 0,
      });
      expect((await run(['unlock', 'nobody'])).exitCode).toBe(1);
    });
  });

  describe('enable USERNAME', () => {
    it('enables an account an admin disabled, and records that the operator did it', async () => {
      const user = (await addAccount('alice'))!;
      expect(await users.disable(user.id)).toBe('disabled');
      expect(await run(['enable', 'ALICE'])).toEqual({
        output: 'alice is enabled: it can log in again.',
        exitCode: 0,
      });
      expect((await users.findById(user.id))?.disabledAt).toBeNull();
      expect((await audit.recent())[0]).toMatchObject({
        type: 'account_enabled',
        username: 'alice',
        detail: 'by the operator command (npm run admin)',
      });
    });

    it('says when there is nothing to enable, and refuses an unknown account', async () => {
      await addAccount('alice');
      expect(await run(['enable', 'alice'])).toEqual({
        output: 'alice is not disabled; nothing changed.',
        exitCode: 0,
      });
      expect((await run(['enable', 'nobody'])).exitCode).toBe(1);
    });
  });
});

describe.skipIf(!isPostgresAvailable())('npm run admin on PostgreSQL (DATABASE_URL)', () => {
  // A database of its own: the command reads DATABASE_URL as the site does, with no schema setting.
  const name = `keyhole_admin_${randomSchemaName().slice('keyhole_test_'.length)}`;
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  let database: SqlDatabase;

  beforeEach(async () => {
    await onTestPostgres((client) => client.query(`CREATE DATABASE ${name}`));
    database = await openSqlDatabase({ postgresUrl: url.toString(), onError: () => undefined });
  });
  afterEach(async () => {
    await database.close();
    await onTestPostgres((client) => client.query(`DROP DATABASE ${name} WITH (FORCE)`));
  });

  it('grants the admin role on the database DATABASE_URL names, and names it when there is no such account', async () => {
    const users = createSqlUserStore(database, createTestClock());
    await users.create({
      username: 'alice',
      passwordHash: 'x',
      phone: '+12025550142',
      preferredChannel: 'sms',
    });
    const admin = runAdminScript({ DATABASE_URL: url.toString() });

    const granted = admin('grant', 'ALICE');
    expect(granted.stderr).toBe('');
    expect(granted.status).toBe(0);
    expect((await users.findByUsername('alice'))!.isAdmin).toBe(true);

    const unknown = admin('grant', 'nobody');
    expect(unknown.stderr.trim()).toMatch(
      new RegExp(`^No account is named "nobody" in postgres://postgres@127\\.0\\.0\\.1:\\d+/${name}\\.`),
    );
    expect(unknown.status).toBe(1);
  });
});
