import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { MAX_CONSECUTIVE_CODE_FAILURES } from '../../src/mfa/code-entry-ceiling.js';
import { createConsoleProvider } from '../../src/mfa/providers/console.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import {
  DEFAULT_MFA_RULES,
  createMfaService,
  type Challenge,
  type MfaService,
} from '../../src/mfa/service.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { createSqlCodeStore } from '../../src/stores/sql/code-store.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { TEST_CODE_TEXTS, buildFraudGuard, capturingLogger, relaxedFraudConfig } from '../helpers/fraud.js';
import { register, submitCode, submitPassword, wrongFor } from '../helpers/flows.js';
import { insertAlice, openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

// The threat: a patient guesser who knows the password stays under the windowed pause (10 wrong
// codes per 15 minutes) and keeps guessing for days. NIST SP 800-63B caps consecutive failures.

describe('the MFA service at the ceiling of 100 wrong codes in a row', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let audit: AuditLog;
  let printed: string[];
  let logLines: string[];
  let mfa: MfaService;
  const RECIPIENT = { userId: 1, username: 'alice', phone: '+12025550142' };

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    await insertAlice(sql.database);
    clock = createTestClock();
    audit = createSqlAuditLog(sql.database, clock);
    printed = [];
    logLines = [];
    challenge = undefined;
    const limits = createMemoryRateLimitStore(clock);
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
      sendGuard: buildFraudGuard({
        database: sql.database,
        clock,
        limits,
        audit,
        config: relaxedFraudConfig(),
      }).sends,
      ceiling: createSqlCodeEntryCeiling(sql.database, clock),
      logger: capturingLogger(logLines),
    });
  });
  afterEach(() => sql.close());

  let challenge: Challenge | undefined;
  async function newCode() {
    clock.advance(31_000);
    const outcome = await mfa.sendCode({
      recipient: RECIPIENT,
      scope: 'login',
      channel: 'sms',
      clientKey: '192.0.2.1',
    });
    if (!outcome.ok) throw new Error(`no code: ${outcome.reason}`);
    challenge = outcome.challenge;
    return lastConsoleCode(printed);
  }

  /** Wrong codes as a patient guesser enters them: 5 per code, 10 per window, then waits out the pause. */
  async function guessWrong(times: number) {
    let last;
    for (let i = 0; i < times; i += 1) {
      if (i % 10 === 0 && i > 0) clock.advanceMinutes(15);
      if (i % 5 === 0) await newCode();
      last = await mfa.verifyCode({
        challenge: challenge!,
        code: wrongFor(lastConsoleCode(printed)),
        username: 'alice',
      });
      challenge = last.challenge;
    }
    return last!;
  }

  it('suspends code entry at the 100th: the right code is refused, no code is sent, the operator is told', async () => {
    const hundredth = await guessWrong(MAX_CONSECUTIVE_CODE_FAILURES);
    expect(hundredth).toMatchObject({ ok: false, reason: 'suspended' });

    clock.advanceMinutes(60);
    expect(
      await mfa.sendCode({ recipient: RECIPIENT, scope: 'login', channel: 'sms', clientKey: '192.0.2.1' }),
    ).toEqual({
      ok: false,
      reason: 'suspended',
    });
    const right = lastConsoleCode(printed);
    expect(
      await mfa.verifyCode({
        challenge: { ...challenge!, closedAt: null, closeReason: null, wrongAttempts: 0 },
        code: right,
        username: 'alice',
      }),
    ).toMatchObject({
      ok: false,
      reason: 'suspended',
    });
    expect(await mfa.isCodeEntrySuspended(1)).toBe(true);
    expect((await audit.recent()).filter((event) => event.type === 'code_entry_suspended')).toHaveLength(1);
    const errors = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level >= 50);
    expect(errors.map((entry) => entry.msg)).toEqual([expect.stringMatching(/^code entry suspended/)]);
  });

  it('does not suspend when a right code comes at the 99th: the count starts again', async () => {
    await guessWrong(MAX_CONSECUTIVE_CODE_FAILURES - 1);
    clock.advanceMinutes(15);
    const right = await newCode();
    expect(await mfa.verifyCode({ challenge: challenge!, code: right, username: 'alice' })).toMatchObject({
      ok: true,
    });
    challenge = undefined;

    expect(await guessWrong(1)).toMatchObject({ ok: false, reason: 'wrong_code' });
    expect(await mfa.isCodeEntrySuspended(1)).toBe(false);
  });
});

describe('the code page of a suspended account', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('says plainly that code entry is suspended and to contact the admins, until an admin unlocks it', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const user = (await site.users.findByUsername(account.username))!;
    const ceiling = site.ceiling;
    for (let i = 0; i < MAX_CONSECUTIVE_CODE_FAILURES - 1; i += 1) await ceiling.recordFailure(user.id);

    await submitPassword(browser, account);
    const refused = await submitCode(browser, wrongFor(lastConsoleCode(site.printed)));

    expectPage(refused, 403, /code entry is suspended/);
    const page = await browser.get('/verify');
    expect(visibleText(page.text)).toContain(
      'Too many wrong codes were entered for this account, so code entry is suspended. No more codes can be sent or entered until the site’s admins unlock it: contact them.',
    );
    expect(page.text).not.toMatch(/name="code"/);
    expect(page.text).not.toMatch(/action="\/verify\/resend"/);

    // Logging in again sends no code; the code page says why.
    const printedBefore = site.printed.length;
    const again = createBrowser(site.app);
    expectRedirect(await submitPassword(again, account), '/verify');
    expectPage(await again.get('/verify'), 200, /code entry is suspended/);
    expect(site.printed).toHaveLength(printedBefore);

    expect(await ceiling.unlock(user.id)).toBe(true);
    site.clock.advance(31_000); // the account's resend cooldown, which a new login does not skip
    const unlocked = createBrowser(site.app);
    await submitPassword(unlocked, account);
    expectRedirect(await submitCode(unlocked, lastConsoleCode(site.printed)), '/account');
  });
});
