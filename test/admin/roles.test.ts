import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedAdminsFromConfig, setAdminRole } from '../../src/admin/roles.js';
import { createSqliteAdminSeedLedger } from '../../src/admin/seed-ledger.js';
import { createSqliteAuditLog, type AuditLog } from '../../src/audit/log.js';
import { openDatabase, type Db } from '../../src/db/open.js';
import { createLogger } from '../../src/logger.js';
import { createSqliteUserStore, type UserStore } from '../../src/users/store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';

describe('seeding admins from ADMIN_USERNAMES at start', () => {
  let folder: string;
  let db: Db;
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
      ledger: createSqliteAdminSeedLedger(db),
      clock,
      logger: createLogger('info', { write: (line: string) => void logLines.push(JSON.parse(line)) }),
    });
  const warnings = () => logLines.filter((line) => line.level === WARN).map((line) => line.msg);
  const grants = () => audit.recent().filter((event) => event.type === 'admin_granted');

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'mfa-roles-'));
    db = openDatabase(join(folder, 'app.db'));
    clock = createTestClock();
    users = createSqliteUserStore(db, clock);
    audit = createSqliteAuditLog(db, clock);
    logLines = [];
  });
  afterEach(() => {
    db.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('makes admins of the listed accounts that exist, matching names as login does', () => {
    addAccount('alice');
    addAccount('Bob');
    addAccount('carol');

    expect(seed(['alice', 'bob'])).toEqual({ granted: ['alice', 'Bob'], missing: [], refused: [] });
    expect(users.listAdmins().map((user) => user.username)).toEqual(['alice', 'Bob']);
    expect(users.findByUsername('carol')!.isAdmin).toBe(false);
    expect(grants().map((event) => [event.username, event.detail])).toEqual([
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

  it('reserves nothing for a listed name without an account: it warns, and whoever registers it later is no admin', () => {
    // Threat: a name listed before its owner registers would go to whoever registers it first.
    addAccount('alice');

    expect(seed(['alice', 'dana'])).toEqual({ granted: ['alice'], missing: ['dana'], refused: [] });
    expect(warnings().filter((line) => !line.includes('was made an admin from'))).toEqual([
      'ADMIN_USERNAMES names "dana", but no account has that name, so no one was made an admin for it. ' +
        'Once its owner has registered it, run: npm run admin -- grant dana',
    ]);

    addAccount('DANA');
    expect(users.findByUsername('dana')!.isAdmin).toBe(false);
  });

  it('writes nothing at a restart when the listed accounts are admins already', () => {
    addAccount('alice');
    seed(['alice']);
    expect(seed(['alice'])).toEqual({ granted: [], missing: [], refused: [] });
    expect(grants()).toHaveLength(1);
  });

  it('warns at start when no account can enter the secure area, and says how to make one', () => {
    addAccount('alice');
    seed([]);
    expect(warnings()).toEqual([
      'No account can enter the secure area yet: register one, then run: npm run admin -- grant USERNAME',
    ]);
  });
  it('never seeds an account registered after its name was first listed, even at a later restart', () => {
    // Threat: the operator lists a name before registering it; a stranger registers it first and
    // would be promoted at the next restart.
    seed(['dana']);
    clock.advanceMinutes(1);
    addAccount('dana');
    clock.advanceMinutes(1);
    logLines = [];

    expect(seed(['dana'])).toEqual({ granted: [], missing: [], refused: ['dana'] });
    expect(users.findByUsername('dana')!.isAdmin).toBe(false);
    expect(warnings()[0]).toMatch(/registered after the name was first listed/);
    expect(grants()).toHaveLength(0);
  });

  it('seeds an account registered before its name was first listed, at any later restart', () => {
    addAccount('erin');
    clock.advanceMinutes(1);
    expect(seed(['erin']).granted).toEqual(['erin']);
    setAdminRole({ users, audit }, 'erin', false, 'test');
    clock.advanceMinutes(60);
    expect(seed(['erin']).granted).toEqual(['erin']);
  });
});
