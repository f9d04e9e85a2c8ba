import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import { createMemoryRateLimitStore, type RateLimitStore } from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import { ProviderError } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { createTwilioVerifyProvider } from '../../src/mfa/providers/twilio-verify.js';
import { DEFAULT_MFA_RULES, createMfaService, type MfaService } from '../../src/mfa/service.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio-verify-server.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { buildFraudGuard, fraudConfigFrom } from '../helpers/fraud.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

// The threat: a stranger who knows someone's number registers an account with it and asks for
// codes. With Twilio Verify (one pending verification per number, re-sent when started again) the
// stranger's pending code used to hold the owner's back, and a send Twilio refused after re-sending
// a code was handed back uncounted. The service, the guard with the defaults, and the
// real adapter against the fake Twilio. Fictional number: +1 202 555 0142.

const NUMBER = '+12025550142';
const OWNER = { userId: 1, username: 'owner', phone: NUMBER };
const STRANGER = { userId: 2, username: 'stranger', phone: NUMBER };
const ACCOUNT_SID = `AC${'0'.repeat(32)}`;
const AUTH_TOKEN = 'fake-auth-token-not-a-secret';
const SERVICE_SID = `VA${'1'.repeat(32)}`;
const CODE_TTL_MS = 5 * 60_000;

describe('two accounts on one number, with Twilio Verify', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let audit: AuditLog;
  let limits: RateLimitStore;
  let fake: FakeTwilio;

  /** One site process: its own Twilio adapter, sharing the counters and the database with the others. */
  function siteProcess(): MfaService {
    const twilio = createTwilioVerifyProvider({
      config: {
        accountSid: ACCOUNT_SID,
        authToken: AUTH_TOKEN,
        verifyServiceSid: SERVICE_SID,
        baseUrl: fake.baseUrl,
      },
      now: () => clock.now().getTime(),
      codeTtlMs: CODE_TTL_MS,
    });
    return createMfaService({
      providers: createProviderPool([twilio]),
      challenges: createSqlChallengeStore(sql.database, clock),
      limits,
      clock,
      rules: { ...DEFAULT_MFA_RULES, codeTtlMs: CODE_TTL_MS },
      audit,
      sendGuard: buildFraudGuard({ database: sql.database, clock, limits, audit, config: fraudConfigFrom() })
        .sends,
      ceiling: createSqlCodeEntryCeiling(sql.database, clock),
      logger: createLogger('silent'),
    });
  }

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    for (const { userId, username } of [OWNER, STRANGER]) {
      await sql.database.db
        .insertInto('users')
        .values({
          id: userId,
          username,
          username_key: username,
          password_hash: 'x',
          phone_e164: NUMBER,
          preferred_channel: 'sms',
          created_at: 0,
        })
        .execute();
    }
    clock = createTestClock();
    audit = createSqlAuditLog(sql.database, clock);
    limits = createMemoryRateLimitStore(clock);
    fake = await startFakeTwilio({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      serviceSid: SERVICE_SID,
      now: clock.now,
    });
  });
  afterEach(async () => {
    fake.close();
    await sql.close();
  });

  const logIn = (
    mfa: MfaService,
    recipient: typeof OWNER,
    clientKey: string,
    channel: 'sms' | 'voice' = 'sms',
  ) =>
    mfa.sendCode({ recipient, scope: 'login', channel, clientKey }).catch((error: unknown) => {
      if (error instanceof ProviderError) return { ok: false as const, reason: `provider ${error.kind}` };
      throw error;
    });

  it('lets the owner who completed a code get one each time, whenever the stranger asked just before', async () => {
    const mfa = siteProcess();
    const first = await logIn(mfa, OWNER, '192.0.2.1');
    if (!first.ok) throw new Error('expected the first code to go out');
    expect(
      await mfa.verifyCode({
        challenge: first.challenge,
        code: fake.lastCodeFor(NUMBER)!,
        username: 'owner',
      }),
    ).toMatchObject({ ok: true });

    const ownerOutcomes: unknown[] = [];
    for (let round = 0; round < 3; round += 1) {
      clock.advanceMinutes(11);
      expect(await logIn(mfa, STRANGER, '198.51.100.9')).toMatchObject({ ok: true });
      clock.advance(1_000);
      ownerOutcomes.push(await logIn(mfa, OWNER, '192.0.2.1'));
    }

    expect(ownerOutcomes).toEqual([
      expect.objectContaining({ ok: true }),
      expect.objectContaining({ ok: true }),
      expect.objectContaining({ ok: true }),
    ]);
  });

  it('counts every message Twilio delivered for a send it then refused: at most 3 reach the number in 10 minutes', async () => {
    // Two processes, so the second learns of the owner's pending code only from Twilio's answer,
    // after Twilio has re-sent it (by voice, as the stranger asked).
    const [first, second] = [siteProcess(), siteProcess()];
    expect(await logIn(first, OWNER, '192.0.2.1')).toMatchObject({ ok: true });

    const strangerOutcomes: unknown[] = [];
    for (let i = 0; i < 6; i += 1) {
      clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);
      strangerOutcomes.push(await logIn(second, STRANGER, '198.51.100.9', 'voice'));
    }

    expect(fake.sentCodes().map((sent) => sent.channel)).toEqual(['sms', 'call', 'call']);
    expect(strangerOutcomes.slice(0, 2)).toEqual([
      { ok: false, reason: 'provider rate_limited' },
      { ok: false, reason: 'provider rate_limited' },
    ]);
    expect(strangerOutcomes.slice(2)).toEqual(
      Array.from({ length: 4 }, () => expect.objectContaining({ ok: false, reason: 'not_now' })),
    );
  });
});
