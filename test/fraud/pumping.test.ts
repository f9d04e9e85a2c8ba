import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import type { Channel } from '../../src/mfa/provider.js';
import { createConsoleProvider } from '../../src/mfa/providers/console.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { DEFAULT_MFA_RULES, createMfaService, type MfaService } from '../../src/mfa/service.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { createSqlCodeStore } from '../../src/stores/sql/code-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { User, UserStore } from '../../src/users/store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectRedirect } from '../helpers/expectations.js';
import {
  TEST_CODE_TEXTS,
  australianNumber,
  buildFraudGuard,
  createBrowserAt,
  fraudConfigFrom,
} from '../helpers/fraud.js';
import { GOOD_PASSWORD, register, submitCode, submitPassword } from '../helpers/flows.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

// The attack run of issue 8: fresh accounts, each a password away from a paid code, registered
// with fresh numbers of one country the site has never verified a code for, from 20 addresses.
// Voice calls and SMS alike. Fictional numbers: ACMA's +61 2 5550 xxxx and +1 202 555 01xx.

const ATTACKER_ADDRESSES = Array.from({ length: 20 }, (_, i) => `203.0.113.${i + 1}`);
const REAL_PERSON = { address: '192.0.2.200', phone: '+12025550142' };
const sentToAustralia = (printed: string[]) => printed.filter((line) => line.includes(' to +61 ')).length;

describe('a scripted pumping run of 1,000 registrations and logins (the service, as every page uses it)', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let users: UserStore;
  let printed: string[];
  let mfa: MfaService;
  let guard: ReturnType<typeof buildFraudGuard>;

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    users = createSqlUserStore(sql.database, clock);
    printed = [];
    const audit = createSqlAuditLog(sql.database, clock);
    const limits = createMemoryRateLimitStore(clock);
    // The defaults; Australia is allowed, as an operator serving it would allow it.
    guard = buildFraudGuard({
      database: sql.database,
      clock,
      limits,
      audit,
      config: fraudConfigFrom({ SMS_COUNTRIES: 'US,AU' }),
    });
    mfa = createMfaService({
      providers: createProviderPool([
        createConsoleProvider({
          codes: createSqlCodeStore(sql.database, clock, 'key'),
          codeDigits: 6,
          codeTtlMinutes: 5,
          print: (line) => printed.push(line),
          texts: TEST_CODE_TEXTS,
        }),
      ]),
      challenges: createSqlChallengeStore(sql.database, clock),
      limits,
      clock,
      rules: { ...DEFAULT_MFA_RULES, codeTtlMs: 5 * 60_000 },
      audit,
      sendGuard: guard.sends,
      ceiling: createSqlCodeEntryCeiling(sql.database, clock),
      logger: createLogger('silent'),
    });
  });
  afterEach(() => sql.close());

  /** Registration as the register page does it, with the guard first (the password hash left out). */
  async function registerAccount(clientKey: string, username: string, phone: string, channel: Channel) {
    const admission = await guard.registrations.reserveRegistration({ clientKey, phone });
    if (!admission.allowed) return null;
    const user = await users.create({
      username,
      passwordHash: 'not-a-hash',
      phone,
      preferredChannel: channel,
    });
    await admission.complete(user !== null);
    return user;
  }

  const logIn = (user: User, clientKey: string) =>
    mfa.sendCode({
      recipient: { userId: user.id, username: user.username, phone: user.phone },
      scope: 'login',
      channel: user.preferredChannel,
      clientKey,
    });

  it('ends with at most 20 codes sent, while a real person logging in at the same time gets their code', async () => {
    const realPerson = (await registerAccount(REAL_PERSON.address, 'real', REAL_PERSON.phone, 'sms'))!;
    const owned: User[] = [];
    let realOutcome;

    // 1,000 rounds over an hour: register with a fresh number, then log in (with the new account,
    // or, when registration was refused, with one the attacker already has).
    for (let i = 0; i < 1000; i += 1) {
      const address = ATTACKER_ADDRESSES[i % ATTACKER_ADDRESSES.length]!;
      const channel: Channel = i % 2 === 0 ? 'sms' : 'voice';
      const created = await registerAccount(address, `pump${i}`, australianNumber(i), channel);
      if (created) owned.push(created);
      const account = created ?? owned[i % Math.max(1, owned.length)];
      if (account) await logIn(account, address);
      if (i === 500) realOutcome = await logIn(realPerson, REAL_PERSON.address);
      clock.advance(3_600);
    }

    expect(sentToAustralia(printed)).toBeGreaterThan(0);
    expect(sentToAustralia(printed)).toBeLessThanOrEqual(20);
    expect(owned.length).toBeLessThanOrEqual(5 * ATTACKER_ADDRESSES.length * 2);
    expect(realOutcome).toMatchObject({ ok: true });
    expect(printed.filter((line) => line.includes('+1 202 555 0142'))).toHaveLength(1);
  });
});

describe('a smaller pumping run through the pages', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp({ fraudLimits: 'defaults', env: { SMS_COUNTRIES: 'US,AU' } });
  });
  afterEach(() => site.close());

  it('ends with at most 20 codes sent for 60 sign-ups and logins from 6 addresses; a real person still logs in', async () => {
    const real = createBrowserAt(site.app, REAL_PERSON.address);
    await register(real, {
      username: 'real',
      password: GOOD_PASSWORD,
      phone: REAL_PERSON.phone,
      channel: 'sms',
    });
    const statuses: number[] = [];

    for (let i = 0; i < 60; i += 1) {
      const browser = createBrowserAt(site.app, ATTACKER_ADDRESSES[i % 6]!);
      const account = {
        username: `pump${i}`,
        password: GOOD_PASSWORD,
        phone: australianNumber(i),
        channel: (i % 2 === 0 ? 'sms' : 'voice') as Channel,
      };
      await browser.submit('/register', '/register', { ...account });
      statuses.push((await submitPassword(browser, account)).status);
      if (i === 30) {
        expectRedirect(
          await submitPassword(real, { ...account, ...REAL_PERSON, username: 'real' }),
          '/verify',
        );
        expectRedirect(await submitCode(real, lastConsoleCode(site.printed)), '/account');
      }
    }

    expect(sentToAustralia(site.printed)).toBeGreaterThan(0);
    expect(sentToAustralia(site.printed)).toBeLessThanOrEqual(20);
    // Refused sign-ups cannot log in (401); the others never proved their numbers, so their
    // passwords lead to the sign-up code page (303), which says when no code could be sent.
    expect(new Set(statuses)).toEqual(new Set([303, 401]));
    // 120 argon2 hashes and a hundred requests: well over the default on a busy machine.
  }, 60_000);
});
