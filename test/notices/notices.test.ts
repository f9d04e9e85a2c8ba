import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createEmailComposer } from '../../src/email/compose.js';
import { createMailer } from '../../src/email/index.js';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import { NOTICE_TYPES, NOTICE_WINDOW_MS, createNotices, type Notices } from '../../src/notices/notices.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';
import { startTestSmtpServer, unusedPort, type TestSmtpServer } from '../helpers/smtp-server.js';

/**
 * Security notices (issue 11): an email when the account changes, at most one per type per
 * account per 10 minutes, never blocking the change, never by SMS.
 */
describe('security notices', () => {
  let smtp: TestSmtpServer;
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let logLines: string[];
  let ada: { id: number; username: string; email: string | null };

  const noticesThrough = (smtpUrl: string): Notices => {
    const config = loadConfig({
      EMAIL_PROVIDER: 'smtp',
      SMTP_URL: smtpUrl,
      EMAIL_FROM: 'no-reply@example.com',
    });
    return createNotices({
      mailer: createMailer({
        settings: config.email,
        print: () => undefined,
        timeouts: { connectionMs: 500 },
      }),
      composer: createEmailComposer({ name: 'Keyhole', publicUrl: 'https://keyhole.example' }),
      limits: createMemoryRateLimitStore(clock),
      audit: createSqlAuditLog(sql.database, clock),
      clock,
      logger: createLogger('info', { write: (line: string) => logLines.push(line) }),
    });
  };
  const eventsOf = async (userId: number) =>
    (await createSqlAuditLog(sql.database, clock).forUser(userId, new Date(0))).map(
      (event) => `${event.type}:${event.detail}`,
    );

  beforeEach(async () => {
    smtp = await startTestSmtpServer();
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    logLines = [];
    const created = await createSqlUserStore(sql.database, clock).create({
      username: 'ada',
      passwordHash: 'hash',
      phone: '+12025550170',
      preferredChannel: 'sms',
    });
    ada = { id: created!.id, username: 'ada', email: 'ada@example.com' };
  });
  afterEach(async () => {
    await smtp.close();
    await sql.close();
  });

  it('emails the verified address what changed and when, with no code and one link to this site', async () => {
    const notices = noticesThrough(smtp.url);
    await notices.notify({ type: 'password_changed', user: ada, ip: '203.0.113.9' });
    await notices.settled();
    expect(smtp.messages).toHaveLength(1);
    const [email] = smtp.messages;
    expect(email!.envelope.to).toEqual(['ada@example.com']);
    expect(email!.subject).toBe('Your password was changed');
    expect(email!.text).toContain('The password of your account was changed');
    expect(email!.text).toContain('203.0.113.9');
    expect(email!.text).toContain('Sat, 21 Nov 2026, 10:00 UTC');
    expect(email!.text).not.toMatch(/\b\d{6}\b/);
    expect([...email!.text.matchAll(/https?:\/\/\S+/g)].map((match) => match[0])).toEqual([
      'https://keyhole.example/forgot',
    ]);
    expect(await eventsOf(ada.id)).toEqual(['notice_sent:password_changed']);
  });

  it('sends at most one of each type per account in 10 minutes; other types and accounts are not held back', async () => {
    const notices = noticesThrough(smtp.url);
    const ben = { id: ada.id + 1000, username: 'ben', email: 'ben@example.com' };
    await notices.notify({ type: 'password_changed', user: ada });
    await notices.notify({ type: 'password_changed', user: ada });
    await notices.notify({ type: 'phone_changed', user: ada });
    await notices.notify({ type: 'password_changed', user: ben });
    clock.advance(NOTICE_WINDOW_MS - 1);
    await notices.notify({ type: 'password_changed', user: ada });
    await notices.settled();
    expect(smtp.messages.map((email) => `${email.envelope.to[0]} ${email.subject}`)).toEqual([
      'ada@example.com Your password was changed',
      'ada@example.com Your phone number was changed',
      'ben@example.com Your password was changed',
    ]);
    clock.advance(1);
    await notices.notify({ type: 'password_changed', user: ada });
    await notices.settled();
    expect(smtp.messages).toHaveLength(4);
  });

  it('sends nothing to an account without a verified address, and goes to `to` when given (an old address)', async () => {
    const notices = noticesThrough(smtp.url);
    await notices.notify({ type: 'password_changed', user: { ...ada, email: null } });
    await notices.notify({ type: 'email_changed', user: ada, to: 'old@example.org' });
    await notices.settled();
    expect(smtp.messages.map((email) => email.envelope.to[0])).toEqual(['old@example.org']);
  });

  it('never throws nor waits when the mail host is down: the failure is logged and in the security log', async () => {
    const notices = noticesThrough(`smtp://127.0.0.1:${await unusedPort()}`);
    await expect(notices.notify({ type: 'phone_changed', user: ada })).resolves.toBeUndefined();
    await notices.settled();
    expect(logLines.join('\n')).toContain('a security notice failed');
    expect(await eventsOf(ada.id)).toEqual(['notice_failed:phone_changed']);
  });

  it('says how many recovery codes are left after one was used, and that a new set voids the old', async () => {
    const notices = noticesThrough(smtp.url);
    await notices.notify({ type: 'recovery_code_used', user: ada, left: 7, ip: '203.0.113.9' });
    await notices.notify({ type: 'recovery_codes_generated', user: ada });
    await notices.settled();
    const [used, generated] = smtp.messages;
    expect(used!.subject).toBe('A recovery code was used');
    expect(used!.text).toContain(
      'A recovery code was used to sign in to your account or reset its password. 7 unused recovery codes are left.',
    );
    expect(used!.text).toContain('If this was not you');
    expect(generated!.subject).toBe('New recovery codes were made');
    expect(generated!.text).toContain(
      'New recovery codes were made for your account; the old ones no longer work.',
    );
    // Never a code in a notice.
    expect(`${used!.text}${generated!.text}`).not.toMatch(/[0-9A-Z]{4}-[0-9A-Z]{4}/);
    expect(await eventsOf(ada.id)).toEqual([
      'notice_sent:recovery_codes_generated',
      'notice_sent:recovery_code_used',
    ]);
  });

  it('has words for every type', async () => {
    const notices = noticesThrough(smtp.url);
    for (const type of NOTICE_TYPES) await notices.notify({ type, user: ada });
    await notices.settled();
    expect(new Set(smtp.messages.map((email) => email.subject)).size).toBe(NOTICE_TYPES.length);
  });
});
