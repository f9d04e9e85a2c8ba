import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKeyManagement } from '../../src/admin/api-key-management.js';
import { hashApiKey, looksLikeApiKey } from '../../src/api/keys.js';
import type { AuditLog } from '../../src/audit/log.js';
import { createSqlApiKeyStore } from '../../src/stores/sql/api-key-store.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { User } from '../../src/users/store.js';
import { createTestClock } from '../helpers/clock.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

/**
 * Making and revoking API keys apart from the pages (src/admin/api-key-management.ts): a key from
 * production says so in its prefix, so a key pasted into a test setup (or a secret scanner's
 * finding) shows at once where it works.
 */
describe('API key management', () => {
  let sql: TestSqlDatabase;
  let audit: AuditLog;
  let admin: User;

  const management = (isProduction: boolean) =>
    createApiKeyManagement({
      apiKeys: createSqlApiKeyStore(sql.database, createTestClock()),
      audit,
      isProduction,
    });

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    const clock = createTestClock();
    audit = createSqlAuditLog(sql.database, clock);
    const users = createSqlUserStore(sql.database, clock);
    admin = (await users.create({
      username: 'root',
      passwordHash: 'hash',
      phone: '+12025550153',
      preferredChannel: 'sms',
    }))!;
  });
  afterEach(() => sql.close());

  it('makes kh_live_ keys in production and kh_test_ keys elsewhere, each with its hint', async () => {
    const live = await management(true).create({ name: 'Shop', channels: ['sms'], admin });
    expect(live.key).toMatch(/^kh_live_[A-Za-z0-9_-]{43}$/);
    expect(looksLikeApiKey(live.key)).toBe(true);
    expect(live.apiKey.hint).toBe(live.key.slice(0, 12));
    const test = await management(false).create({ name: 'Shop', channels: ['sms'], admin });
    expect(test.key).toMatch(/^kh_test_[A-Za-z0-9_-]{43}$/);
    expect(test.key).not.toBe(live.key);
  });

  it('keeps the digest, and tells a revocation from a second one; only the first is audited', async () => {
    const keys = management(false);
    const made = await keys.create({ name: 'Shop', channels: ['voice'], admin, ip: '203.0.113.9' });
    const store = createSqlApiKeyStore(sql.database, createTestClock());
    expect((await store.findByHash(hashApiKey(made.key)))!.id).toBe(made.apiKey.id);
    expect(await keys.revoke({ key: made.apiKey, admin })).toBe('revoked');
    expect(await keys.revoke({ key: made.apiKey, admin })).toBe('already_revoked');
    const events = await audit.recent();
    expect(events.map((event) => [event.type, event.username, event.ip])).toEqual([
      ['api_key_revoked', 'root', null],
      ['api_key_created', 'root', '203.0.113.9'],
    ]);
    expect(JSON.stringify(events)).not.toContain(made.key.slice(12));
  });
});
