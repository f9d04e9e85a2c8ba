import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedAdminsFromConfig, setAdminRole } from '../../src/admin/roles.js';
import type { AuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/logger.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlAdminSeedLedger } from '../../src/stores/sql/seed-ledger.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { UserStore } from '../../src/users/store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

describe('seeding admins from ADMIN_USERNAMES at start', () => {
  let sql: TestSqlDatabase;
  let users: UserStore;
  let audit: AuditLog;
  let logLines: { level: number; msg: string }[];
  let clock: TestClock;

  const WARN = 40;
  const addAccount = (username: string) =>
    users.create({ username, passwordHash: 'x', phone: '+12025550142', preferredChannel: 'sms' });
  const seed = (adminUsernames: string[]) =>
    seedAdminsFromConfig({
      users,
      audit,
      adminUsernames,
      ledger: createSqlAdminSeedLedger(sql.database),
      clock,
      logger: createLogger('info', { write: (line: string) => void logLines.push(JSON.parse(line)) }),
    });
  const warnings = () => logLines.filter((line) => line.level === WARN).map((line) => line.msg);
  const grants = async () => (await audit.recent()).filter((event) => event.type === 'admin_granted');

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    users = createSqlUserStore(sql.database, clock);
    audit = createSqlAuditLog(sql.database, clock);
    logLines = [];
  });
  afterEach(() => sql.close());

  it('makes admins of the listed accounts that exist, matching names as login does', async () => {
    await addAccount('alice');
    await addAccount('Bob');
    await addAccount('carol');

    expect(await seed(['alice', 'bob'])).toEqual({ granted: ['alice', 'Bob'], missing: [], refused: [] });
    expect((await users.listAdmins()).map((user) => user.username)).toEqual(['alice', 'Bob']);
    expect((await users.findByUsername('carol'))!.isAdmin).toBe(false);
    expect((await grants()).map((event) => [event.username, event.detail])).toEqual([
      ['Bob', 'ADMIN_USERNAMES at start'],
      ['alice', 'ADMIN_USERNAMES at start'],
    ]);
    // Each promotion is a warning: an account older than the list could be a squatter of the name.
    expect(warnings()).toEqual([
      expect.stringMatching(
        /^"alice" was made an admin from ADMIN_USERNAMES: check it is the account you meant/,
      ),
      expect.stringMatching(/^"Bob" was made an admin from ADMIN_USERNAMES/),
    ]);
  });

  it('reserves nothing for a listed name without an account: it warns, and whoever registers it later is no admin', async () => {
    // Threat: a name listed before its owner registers would go to whoever registers it first.
    await addAccount('alice');

    expect(await seed(['alice', 'dana'])).toEqual({ granted: ['alice'], missing: ['dana'], refused: [] });
    expect(warnings().filter((line) => !line.includes('was made an admin from'))).toEqual([
      'ADMIN_USERNAMES names "dana", but no account has that name, so no one was made an admin for it. ' +
        'Once its owner has registered it, run: npm run admin -- grant dana',
    ]);

    await addAccount('DANA');
    expect((await users.findByUsername('dana'))!.isAdmin).toBe(false);
  });

  it('writes nothing at a restart when the listed accounts are admins already', async () => {
    await addAccount('alice');
    await seed(['alice']);
    expect(await seed(['alice'])).toEqual({ granted: [], missing: [], refused: [] });
    expect(await grants()).toHaveLength(1);
  });

  it('warns at start when no account can enter the secure area, and says how to make one', async () => {
    await addAccount('alice');
    await seed([]);
    expect(warnings()).toEqual([
      'No account can enter the secure area yet: register one, then run: npm run admin -- grant USERNAME',
    ]);
  });

  it('never seeds an account registered after its name was first listed, even at a later restart', async () => {
    // Threat: the operator lists a name before registering it; a stranger registers it first and
    // would be promoted at the next restart.
    await seed(['dana']);
    clock.advanceMinutes(1);
    await addAccount('dana');
    clock.advanceMinutes(1);
    logLines = [];

    expect(await seed(['dana'])).toEqual({ granted: [], missing: [], refused: ['dana'] });
    expect((await users.findByUsername('dana'))!.isAdmin).toBe(false);
    expect(warnings()[0]).toMatch(/registered after the name was first listed/);
    expect(await grants()).toHaveLength(0);
  });

  it('never seeds an account registered after its name was first listed, even when the clock stepped back', async () => {
    // Threat: the server's clock is set back (NTP, a restored VM) after the name is listed; a
    // stranger who registers the name then has a registration time before the listing.
    await addAccount('alice');
    await seed(['dana']);
    clock.advanceMinutes(-120);
    await addAccount('dana');
    logLines = [];

    expect(await seed(['dana'])).toEqual({ granted: [], missing: [], refused: ['dana'] });
    expect((await users.findByUsername('dana'))!.isAdmin).toBe(false);
  });

  it('seeds an account registered before its name was first listed, at any later restart', async () => {
    await addAccount('erin');
    clock.advanceMinutes(1);
    expect((await seed(['erin'])).granted).toEqual(['erin']);
    await setAdminRole({ users, audit }, 'erin', false, 'test');
    clock.advanceMinutes(60);
    expect((await seed(['erin'])).granted).toEqual(['erin']);
  });
});
