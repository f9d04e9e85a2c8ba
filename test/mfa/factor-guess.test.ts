import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import type { CodeEntryCeiling } from '../../src/mfa/code-entry-ceiling.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { DEFAULT_MFA_RULES, createMfaService, type MfaService } from '../../src/mfa/service.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { RELAXED_FRAUD_ENV } from '../helpers/create-test-app.js';
import { TEST_CODE_TEXTS, buildFraudGuard, fraudConfigFrom } from '../helpers/fraud.js';
import { createConsoleProvider } from '../../src/mfa/providers/console.js';
import { createSqlCodeStore } from '../../src/stores/sql/code-store.js';
import { insertAlice, openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

/**
 * Codes the site checks itself (an authenticator app's, a recovery code) count under the same
 * limits as a phone code: wrong ones pause the account's code entry after the same number, a run
 * of them suspends it, and a step-up's wrong guesses count against its session only.
 */
describe('a guess at a code the site checks itself (checkFactorGuess)', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let audit: AuditLog;
  let mfa: MfaService;
  let sqlCeiling: CodeEntryCeiling;

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    await insertAlice(sql.database);
    clock = createTestClock();
    audit = createSqlAuditLog(sql.database, clock);
    const limits = createMemoryRateLimitStore(clock);
    mfa = createMfaService({
      // No code is sent here: the provider is never asked.
      providers: createProviderPool([
        createConsoleProvider({
          codes: createSqlCodeStore(sql.database, clock, 'key'),
          codeDigits: 6,
          codeTtlMinutes: 5,
          print: () => undefined,
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
        config: fraudConfigFrom(RELAXED_FRAUD_ENV),
      }).sends,
      ceiling: (sqlCeiling = createSqlCodeEntryCeiling(sql.database, clock, 25)),
      logger: createLogger('silent'),
    });
  });
  afterEach(() => sql.close());

  const guess = (right: boolean, extra: Partial<Parameters<MfaService['checkFactorGuess']>[0]> = {}) =>
    mfa.checkFactorGuess({
      userId: 1,
      username: 'alice',
      describedAs: 'authenticator app code',
      compare: async () => right,
      ...extra,
    });

  it('lets a right code through and audits a wrong one', async () => {
    expect(await guess(true)).toEqual({ ok: true });
    expect(await guess(false)).toEqual({ ok: false, reason: 'wrong' });
    const events = await audit.recent();
    expect(events[0]).toMatchObject({ type: 'code_failed', detail: 'authenticator app code' });
  });

  it('pauses the account’s code entry after as many wrong guesses as phone codes, and then compares nothing', async () => {
    for (let i = 1; i < DEFAULT_MFA_RULES.maxFailuresPerAccount; i += 1) {
      expect(await guess(false)).toEqual({ ok: false, reason: 'wrong' });
    }
    expect(await guess(false)).toMatchObject({ ok: false, reason: 'locked', lockedBy: 'account' });
    let compared = false;
    const afterwards = await guess(true, {
      compare: async () => {
        compared = true;
        return true;
      },
    });
    expect(afterwards).toMatchObject({ ok: false, reason: 'locked' });
    expect(compared).toBe(false);
    // The phone's code page says the same: the pause is the account's, whichever factor caused it.
    expect(await mfa.lockedForSeconds(1)).toBeGreaterThan(0);
    clock.advance(DEFAULT_MFA_RULES.failureWindowMs + 1000);
    expect(await guess(true)).toEqual({ ok: true });
  });

  it('stops parallel guesses at the limit: the failure is reserved before the comparison', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, () => guess(false)));
    const compared = results.filter((result) => !result.ok && result.reason === 'wrong').length;
    expect(compared).toBeLessThanOrEqual(DEFAULT_MFA_RULES.maxFailuresPerAccount);
    expect(results.filter((result) => !result.ok && result.reason === 'locked').length).toBeGreaterThan(0);
  });

  it('counts a step-up’s wrong guesses against its session, not the account’s logins', async () => {
    for (let i = 0; i < DEFAULT_MFA_RULES.maxFailuresPerAccount; i += 1) {
      await guess(false, { stepUpSession: 'session-a' });
    }
    expect(await guess(false, { stepUpSession: 'session-a' })).toMatchObject({
      reason: 'locked',
      lockedBy: 'session',
    });
    expect(await mfa.lockedForSeconds(1)).toBeNull();
    expect(await guess(true)).toEqual({ ok: true });
  });

  it('keeps a bucket of the factor’s own (recovery codes: 10 an hour) under the account’s limits', async () => {
    const ownLimit = { key: 'recovery:1', max: 3, windowMs: 3_600_000 };
    expect(await guess(false, { ownLimit })).toEqual({ ok: false, reason: 'wrong' });
    expect(await guess(false, { ownLimit })).toEqual({ ok: false, reason: 'wrong' });
    expect(await guess(false, { ownLimit })).toMatchObject({ reason: 'locked', lockedBy: 'factor' });
    expect(await guess(true, { ownLimit })).toMatchObject({ reason: 'locked', lockedBy: 'factor' });
    // The account's other factors are not paused by it.
    expect(await guess(true)).toEqual({ ok: true });
    clock.advance(3_600_000 + 1000);
    expect(await guess(true, { ownLimit })).toEqual({ ok: true });
  });

  it('tells the owner once, by the wrong guess that fills the factor’s own bucket, even as it ends the session', async () => {
    let told = 0;
    const ownLimit = {
      key: 'reset-app:1',
      max: DEFAULT_MFA_RULES.maxFailuresPerAccount,
      windowMs: 86_400_000,
      onPaused: async () => void (told += 1),
    };
    for (let i = 1; i < ownLimit.max; i += 1) {
      await guess(false, { ownLimit, stepUpSession: 'reset-a' });
    }
    expect(told).toBe(0);
    // The 10th fills the session's count and the factor's bucket at once.
    expect(await guess(false, { ownLimit, stepUpSession: 'reset-a' })).toMatchObject({ reason: 'locked' });
    expect(told).toBe(1);
    expect(await guess(false, { ownLimit, stepUpSession: 'reset-b' })).toMatchObject({
      reason: 'locked',
      lockedBy: 'factor',
    });
    expect(told).toBe(1);
  });

  describe('an answer nobody can guess (a passkey)', () => {
    const answer = (right: boolean, stepUpSession?: string) =>
      mfa.checkUnguessableFactor({
        userId: 1,
        username: 'alice',
        compare: async () => right,
        ...(stepUpSession ? { stepUpSession } : {}),
      });

    it('is let through while others’ wrong codes pause or suspend code entry, and lifts neither', async () => {
      for (let i = 0; i < DEFAULT_MFA_RULES.maxFailuresPerAccount; i += 1) await guess(false);
      expect(await mfa.lockedForSeconds(1)).toBeGreaterThan(0);
      expect(await answer(true)).toEqual({ ok: true });
      expect(await mfa.lockedForSeconds(1)).toBeGreaterThan(0);
      for (let i = 0; i < 25; i += 1) await sqlCeiling.recordFailure(1);
      expect(await mfa.isCodeEntrySuspended(1)).toBe(true);
      expect(await answer(true)).toEqual({ ok: true });
      expect(await answer(true, 'session-a')).toEqual({ ok: true });
      expect(await mfa.isCodeEntrySuspended(1)).toBe(true);
    });

    it('is no wrong guess at a login, however many are refused', async () => {
      for (let i = 0; i < 3 * DEFAULT_MFA_RULES.maxFailuresPerAccount; i += 1) {
        expect(await answer(false)).toEqual({ ok: false, reason: 'wrong' });
      }
      expect(await mfa.lockedForSeconds(1)).toBeNull();
      expect(await mfa.isCodeEntrySuspended(1)).toBe(false);
      expect(await guess(true)).toEqual({ ok: true });
    });

    it('counts refused answers at a step-up against its session, which ends at the same limit', async () => {
      for (let i = 1; i < DEFAULT_MFA_RULES.maxFailuresPerAccount; i += 1) {
        expect(await answer(false, 'session-a')).toEqual({ ok: false, reason: 'wrong' });
      }
      expect(await answer(false, 'session-a')).toMatchObject({ reason: 'locked', lockedBy: 'session' });
      expect(await answer(true, 'session-a')).toMatchObject({ reason: 'locked', lockedBy: 'session' });
      expect(await answer(true, 'session-b')).toEqual({ ok: true });
      expect(await mfa.lockedForSeconds(1)).toBeNull();
    });
  });

  it('suspends code entry after a run of wrong guesses, as phone codes do', async () => {
    let last;
    for (let i = 0; i < 25; i += 1) {
      last = await guess(false);
      // Past the window's pause, so that the run goes on.
      if (!last.ok && last.reason === 'locked') clock.advance(DEFAULT_MFA_RULES.failureWindowMs + 1000);
    }
    expect(await mfa.isCodeEntrySuspended(1)).toBe(true);
    expect(await guess(true)).toEqual({ ok: false, reason: 'suspended' });
  });

  it('hands the reserved failure back when the comparison throws', async () => {
    await expect(
      guess(false, {
        compare: async () => {
          throw new Error('store down');
        },
      }),
    ).rejects.toThrow('store down');
    for (let i = 1; i < DEFAULT_MFA_RULES.maxFailuresPerAccount; i += 1) {
      expect(await guess(false)).toEqual({ ok: false, reason: 'wrong' });
    }
  });
});
