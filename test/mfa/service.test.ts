import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { ProviderError, type MfaProvider } from '../../src/mfa/provider.js';
import { createConsoleProvider } from '../../src/mfa/providers/console.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import {
  DEFAULT_MFA_RULES,
  createMfaService,
  type Challenge,
  type MfaService,
  type SendOutcome,
} from '../../src/mfa/service.js';
import { createLogger } from '../../src/logger.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { createSqlCodeStore } from '../../src/stores/sql/code-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { RELAXED_FRAUD_ENV, consoleCodesPrinted, lastConsoleCode } from '../helpers/create-test-app.js';
import { wrongFor } from '../helpers/flows.js';
import { TEST_CODE_TEXTS, buildFraudGuard, fraudConfigFrom } from '../helpers/fraud.js';
import { insertAlice, openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

const RECIPIENT = { userId: 1, username: 'alice', phone: '+12025550142' };

function sentChallenge(outcome: SendOutcome): Challenge {
  if (!outcome.ok) throw new Error(`expected a code to be sent, got ${outcome.reason}`);
  return outcome.challenge;
}

describe('the MFA service', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let printed: string[];
  let audit: AuditLog;
  let mfa: MfaService;

  /** The service with the console provider or `provider`, and the relaxed fraud limits with `fraudEnv` on top. */
  function buildService(provider?: MfaProvider, fraudEnv: Record<string, string> = {}) {
    const consoleProvider = createConsoleProvider({
      codes: createSqlCodeStore(sql.database, clock, 'key'),
      codeDigits: 6,
      codeTtlMinutes: 5,
      print: (line) => printed.push(line),
      texts: TEST_CODE_TEXTS,
    });
    const limits = createMemoryRateLimitStore(clock);
    return createMfaService({
      providers: createProviderPool([provider ?? consoleProvider]),
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
        config: fraudConfigFrom({ ...RELAXED_FRAUD_ENV, ...fraudEnv }),
      }).sends,
      ceiling: createSqlCodeEntryCeiling(sql.database, clock),
      logger: createLogger('silent'),
    });
  }

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    await insertAlice(sql.database);
    clock = createTestClock();
    printed = [];
    audit = createSqlAuditLog(sql.database, clock);
    mfa = buildService();
  });
  afterEach(() => sql.close());

  const send = (scope: 'login' | 'admin') =>
    mfa.sendCode({ recipient: RECIPIENT, scope, channel: 'sms', clientKey: '192.0.2.1' });
  const verify = (challenge: Challenge, code: string) =>
    mfa.verifyCode({ challenge, code, username: 'alice' });

  describe('scopes', () => {
    it('accepts a login code for the login challenge it was sent for', async () => {
      const challenge = sentChallenge(await send('login'));
      const result = await verify(challenge, lastConsoleCode(printed, 'login'));
      expect(result.ok).toBe(true);
    });

    it('never accepts a login code for an admin challenge', async () => {
      // Threat: a code phished or shoulder-surfed at login must not open the secure area.
      const login = sentChallenge(await send('login'));
      const loginCode = lastConsoleCode(printed, 'login');
      expect((await verify(login, loginCode)).ok).toBe(true);
      clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);

      const admin = sentChallenge(await send('admin'));
      const result = await verify(admin, loginCode);
      expect(result).toMatchObject({ ok: false, reason: 'wrong_code' });
    });

    it('checks an admin challenge against the admin code only', async () => {
      const admin = sentChallenge(await send('admin'));
      expect((await verify(admin, lastConsoleCode(printed, 'admin'))).ok).toBe(true);
    });
  });

  describe('single use', () => {
    it('refuses a code the second time, even within its lifetime', async () => {
      const challenge = sentChallenge(await send('login'));
      const code = lastConsoleCode(printed);
      const first = await verify(challenge, code);
      expect(first.ok).toBe(true);
      const again = await verify(first.challenge, code);
      expect(again).toMatchObject({ ok: false, reason: 'used_up' });
    });
  });

  describe('attempts', () => {
    it('allows five wrong attempts per code, then the code is dead even for the right digits', async () => {
      let challenge = sentChallenge(await send('login'));
      const code = lastConsoleCode(printed);
      const wrong = code === '000000' ? '000001' : '000000';
      const left: number[] = [];
      for (let i = 0; i < 4; i += 1) {
        const result = await verify(challenge, wrong);
        if (result.ok || result.reason !== 'wrong_code') throw new Error('expected wrong_code');
        left.push(result.attemptsLeft);
        challenge = result.challenge;
      }
      expect(left).toEqual([4, 3, 2, 1]);
      const fifth = await verify(challenge, wrong);
      expect(fifth).toMatchObject({ ok: false, reason: 'used_up' });
      expect((await verify(fifth.challenge, code)).ok).toBe(false);
    });

    it('counts attempts made in parallel with a stale copy of the challenge', async () => {
      // Threat: racing requests that each carry "0 attempts used" to get more than five guesses.
      const challenge = sentChallenge(await send('login'));
      const code = lastConsoleCode(printed);
      const results = await Promise.all(Array.from({ length: 5 }, () => verify(challenge, wrongFor(code))));
      expect(results.map((result) => result.ok)).toEqual([false, false, false, false, false]);
      expect(await verify(challenge, code)).toMatchObject({ ok: false, reason: 'used_up' });
    });
  });

  describe('expiry', () => {
    // A provider that would take any code, so the service's own clock is what refuses: the
    // console provider's code store also expires codes, and would hide a service that did not.
    const approvingAnyCode: MfaProvider = {
      name: 'approving',
      channels: ['sms'],
      send: async () => ({}),
      verify: async () => 'valid',
    };

    it('refuses the right code once MFA_CODE_TTL_MINUTES have passed', async () => {
      mfa = buildService(approvingAnyCode);
      const challenge = sentChallenge(await send('login'));
      clock.advanceMinutes(5);
      expect(await verify(challenge, '123456')).toMatchObject({ ok: false, reason: 'expired' });
    });

    it('accepts the right code just before it expires', async () => {
      mfa = buildService(approvingAnyCode);
      const challenge = sentChallenge(await send('login'));
      clock.advance(5 * 60_000 - 1000);
      expect((await verify(challenge, '123456')).ok).toBe(true);
    });
  });

  describe('resending', () => {
    it('refuses a resend within 30 seconds and says how long to wait', async () => {
      const first = sentChallenge(await send('login'));
      clock.advance(10_000);
      expect(await send('login')).toMatchObject({ ok: false, reason: 'cooldown', retryAfterSeconds: 20 });
      clock.advance(20_000);
      const second = sentChallenge(await send('login'));
      expect(second.id).not.toBe(first.id);
    });

    it('voids the previous code when a new one is sent', async () => {
      const first = sentChallenge(await send('login'));
      const firstCode = lastConsoleCode(printed);
      clock.advance(30_000);
      sentChallenge(await send('login'));
      expect(await verify(first, firstCode)).toMatchObject({ ok: false, reason: 'replaced' });
    });

    it('does not give the account a fresh failure count', async () => {
      // Threat: resend-then-guess loops to try unlimited codes.
      const outcomes: string[] = [];
      for (let round = 0; round < 3; round += 1) {
        const sent = await send('login');
        if (!sent.ok) {
          outcomes.push(sent.reason);
          break;
        }
        const wrong = wrongFor(lastConsoleCode(printed));
        let challenge = sent.challenge;
        for (let i = 0; i < 5; i += 1) challenge = (await verify(challenge, wrong)).challenge;
        outcomes.push('five wrong');
        clock.advance(30_000);
      }
      // Two codes of five wrong guesses each reach the account's ten: the third send is refused.
      expect(outcomes).toEqual(['five wrong', 'five wrong', 'locked']);
    });

    it('sends at most five codes per account in 15 minutes, then says when the next is possible', async () => {
      for (let i = 0; i < 5; i += 1) {
        sentChallenge(await send('login'));
        clock.advance(30_000);
      }
      // Five sends 30 seconds apart: the window opened 150 seconds ago.
      expect(await send('login')).toEqual({
        ok: false,
        reason: 'too_many_codes',
        retryAfterSeconds: 15 * 60 - 150,
      });
      // The refused send took no resend cooldown: asked again, the answer is still the real wait.
      expect(await send('login')).toMatchObject({ reason: 'too_many_codes', retryAfterSeconds: 750 });
      clock.advanceMinutes(15);
      expect((await send('login')).ok).toBe(true);
    });
  });

  describe('requests racing each other', () => {
    const slowProvider = (calls: { sends: number; verifies: number }): MfaProvider => ({
      name: 'slow',
      channels: ['sms'],
      send: async () => {
        calls.sends += 1;
        await new Promise((resolve) => setTimeout(resolve, 30));
        return { handle: `h${calls.sends}` };
      },
      verify: async () => {
        calls.verifies += 1;
        await new Promise((resolve) => setTimeout(resolve, 30));
        return 'invalid';
      },
    });

    it('sends one code however many resends arrive at once', async () => {
      // Threat: SMS pumping — many parallel resends while the first provider call is in flight.
      const calls = { sends: 0, verifies: 0 };
      mfa = buildService(slowProvider(calls));
      sentChallenge(await send('login'));
      clock.advance(30_000);
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => send('login')));
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
      expect(outcomes.filter((outcome) => !outcome.ok && outcome.reason === 'cooldown')).toHaveLength(9);
      expect(calls.sends).toBe(2);
    });

    it('never sends more than five login and five step-up codes in 15 minutes, even all at once after each cooldown', async () => {
      // Step-ups (admin, settings, reset) have an allowance of their own: asking for them again and
      // again never uses up the codes the owner needs to log in.
      const calls = { sends: 0, verifies: 0 };
      mfa = buildService(slowProvider(calls));
      for (let round = 0; round < 8; round += 1) {
        await Promise.all([send('login'), send('admin'), send('login'), send('admin')]);
        clock.advance(30_000);
      }
      expect(calls.sends).toBe(10);
    });

    it('stops at the account’s limit of wrong codes when many sessions guess at once', async () => {
      // Threat: spreading guesses over parallel sessions to get past the account lock-out.
      const calls = { sends: 0, verifies: 0 };
      mfa = buildService(slowProvider(calls));
      const challenges: Challenge[] = [];
      for (let i = 0; i < 5; i += 1) {
        challenges.push(sentChallenge(await send(i % 2 === 0 ? 'login' : 'admin')));
        clock.advance(30_000);
      }
      const guesses = challenges.flatMap((challenge) =>
        Array.from({ length: 5 }, () => verify(challenge, '123456')),
      );
      const results = await Promise.all(guesses);
      expect(calls.verifies).toBe(DEFAULT_MFA_RULES.maxFailuresPerAccount);
      expect(results.filter((result) => !result.ok && result.reason === 'locked').length).toBeGreaterThan(0);
    });

    /** A provider whose sends fail (nothing delivered) while `failing.now` is true. */
    function flakyProvider(failing: { now: boolean }): MfaProvider {
      return {
        name: 'flaky',
        channels: ['sms'],
        send: async () => {
          if (failing.now) throw new ProviderError('unavailable', 'flaky', 'no answer');
          return {};
        },
        verify: async () => 'invalid',
      };
    }

    it('gives a failed send back: the person may retry at once, and the number’s count is kept free', async () => {
      const failing = { now: true };
      // The number may have one code in 10 minutes: the send that failed must not be it.
      mfa = buildService(flakyProvider(failing), { SEND_LIMIT_PER_NUMBER_10MIN: '1' });
      await expect(send('login')).rejects.toBeInstanceOf(ProviderError);
      failing.now = false;
      expect((await send('login')).ok).toBe(true);
      expect((await audit.recent()).map((event) => event.type)).toEqual(['code_sent', 'code_send_failed']);
    });

    it('does not count a send that failed against the account’s five codes in 15 minutes', async () => {
      const failing = { now: true };
      mfa = buildService(flakyProvider(failing));
      await expect(send('login')).rejects.toBeInstanceOf(ProviderError);
      failing.now = false;
      const sent: boolean[] = [];
      for (let i = 0; i < 5; i += 1) {
        sent.push((await send('login')).ok);
        clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);
      }
      expect(sent).toEqual([true, true, true, true, true]);
    });
  });

  describe('account lock-out', () => {
    it('starts counting wrong codes afresh once a right code is accepted', async () => {
      // Nine wrong codes (five on one code, four on the next), then the right one.
      let challenge = sentChallenge(await send('login'));
      for (let i = 0; i < 5; i += 1)
        challenge = (await verify(challenge, wrongFor(lastConsoleCode(printed)))).challenge;
      clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);
      challenge = sentChallenge(await send('login'));
      for (let i = 0; i < 4; i += 1)
        challenge = (await verify(challenge, wrongFor(lastConsoleCode(printed)))).challenge;
      expect((await verify(challenge, lastConsoleCode(printed))).ok).toBe(true);

      const next = sentChallenge(await send('login'));
      expect(await verify(next, wrongFor(lastConsoleCode(printed)))).toMatchObject({
        ok: false,
        reason: 'wrong_code',
        attemptsLeft: 4,
      });
    });

    it('pauses code entry after 10 wrong codes in 15 minutes, records it, and lifts it afterwards', async () => {
      let challenge = sentChallenge(await send('login'));
      for (let i = 0; i < 10; i += 1) {
        if (mfa.attemptsLeft(challenge) === 0) {
          clock.advance(30_000);
          challenge = sentChallenge(await send('login'));
        }
        challenge = (await verify(challenge, wrongFor(lastConsoleCode(printed)))).challenge;
      }
      expect((await audit.recent()).map((event) => event.type)).toContain('code_lockout');
      clock.advance(30_000);
      expect(await send('login')).toMatchObject({ ok: false, reason: 'locked' });

      clock.advanceMinutes(15);
      const fresh = sentChallenge(await send('login'));
      expect((await verify(fresh, lastConsoleCode(printed))).ok).toBe(true);
    });
  });

  describe('provider failures', () => {
    it('never reads a provider error as a valid code, nor counts it as a wrong one', async () => {
      const broken: MfaProvider = {
        name: 'broken',
        channels: ['sms', 'voice'],
        send: async () => ({ handle: 'h1' }),
        verify: async () => {
          throw new ProviderError('unavailable', 'broken', 'no answer');
        },
      };
      mfa = buildService(broken);
      const challenge = sentChallenge(await send('login'));
      await expect(verify(challenge, '123456')).rejects.toBeInstanceOf(ProviderError);
      // Nor as a wrong one: a guess that was never compared uses up no attempt.
      const after = await mfa.findChallenge(challenge.id);
      expect(after && mfa.attemptsLeft(after)).toBe(DEFAULT_MFA_RULES.maxAttemptsPerCode);
    });

    describe('a failed send that may still have reached the phone', () => {
      // The threat: a send that fails after a message went out (Twilio re-sending a pending code
      // while refusing this send; a provider that timed out after accepting) was handed back in
      // full, so a stranger could repeat it without any limit counting it.
      const NUMBER_LIMIT = { SEND_LIMIT_PER_NUMBER_10MIN: '2' };
      /** Fails the first send with `error`, then sends. */
      function failingOnce(error: ProviderError): MfaProvider {
        let failed = false;
        return {
          name: 'flaky',
          channels: ['sms'],
          send: async () => {
            if (failed) return {};
            failed = true;
            throw error;
          },
          verify: async () => 'invalid',
        };
      }

      it('after a timeout keeps the toll-fraud counts, yet lets the person retry at once', async () => {
        const timeout = new ProviderError('unavailable', 'flaky', 'send sms code: no answer in time', {
          delivered: 'maybe',
        });
        mfa = buildService(failingOnce(timeout), NUMBER_LIMIT);

        await expect(send('login')).rejects.toBe(timeout);
        expect((await send('login')).ok).toBe(true);
        clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);

        // The number's 2 codes in 10 minutes: the one that timed out counted.
        expect(await send('login')).toMatchObject({ ok: false, reason: 'not_now' });
        expect((await audit.recent()).find((event) => event.type === 'code_send_failed')?.detail).toBe(
          'login code by text message: flaky unavailable; may have been delivered',
        );
      });

      it('after a refusal that delivered a message keeps every count, the resend cooldown too', async () => {
        const refused = new ProviderError('rate_limited', 'flaky', 'send sms code: pending for another', {
          retryAfterSeconds: 300,
          delivered: 'yes',
        });
        mfa = buildService(failingOnce(refused), NUMBER_LIMIT);

        await expect(send('login')).rejects.toBe(refused);
        expect(await send('login')).toMatchObject({ ok: false, reason: 'cooldown' });
        clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);
        expect((await send('login')).ok).toBe(true);
        clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);

        expect(await send('login')).toMatchObject({ ok: false, reason: 'not_now' });
      });
    });

    describe('a check the provider answers after the window of wrong codes ended', () => {
      // Threat: a guess counted just before the account's window of wrong codes ends, and handed
      // back (the provider failed, or said the code expired) after the next window opened, came
      // off the new window's count: a free guess there for every boundary a slow check crossed.
      const HELD_CODE = '222222';

      /** Checks of HELD_CODE wait for `answer`, as a slow provider's do; any other code is wrong. */
      function holdingProvider() {
        let reached!: () => void;
        let answer!: (outcome: 'expired' | ProviderError) => void;
        const waiting = new Promise<void>((resolve) => (reached = resolve));
        const answered = new Promise<'expired' | ProviderError>((resolve) => (answer = resolve));
        const provider: MfaProvider = {
          name: 'held',
          channels: ['sms'],
          send: async () => ({}),
          verify: async ({ code }) => {
            if (code !== HELD_CODE) return 'invalid';
            reached();
            const outcome = await answered;
            if (outcome instanceof ProviderError) throw outcome;
            return outcome;
          },
        };
        return { provider, waiting, answer };
      }

      it.each<[string, 'expired' | ProviderError]>([
        ['fails', new ProviderError('unavailable', 'held', 'no answer')],
        ['says the code expired', 'expired'],
      ])(
        'when it %s, the new window keeps every wrong code: the tenth there pauses code entry',
        async (_, answer) => {
          const held = holdingProvider();
          mfa = buildService(held.provider);
          // A wrong code opens the window; a guess is counted in it one second before it ends.
          await verify(sentChallenge(await send('login')), wrongFor(HELD_CODE));
          clock.advance(DEFAULT_MFA_RULES.failureWindowMs - 1_000);
          let challenge = sentChallenge(await send('login'));
          const slowCheck = verify(challenge, HELD_CODE).catch((error: unknown) => error);
          await held.waiting;

          // The provider answers two seconds later, after a wrong code opened the next window.
          clock.advance(2_000);
          expect(await verify(challenge, wrongFor(HELD_CODE))).toMatchObject({ reason: 'wrong_code' });
          held.answer(answer);
          const late = await slowCheck;
          if (answer instanceof ProviderError) expect(late).toBe(answer);
          else expect(late).toMatchObject({ ok: false, reason: 'expired' });

          // Nine more wrong codes make ten in this window, the one made while the check waited among them.
          challenge = (await mfa.findChallenge(challenge.id))!;
          const outcomes: string[] = [];
          for (let i = 0; i < 9; i += 1) {
            if (mfa.attemptsLeft(challenge) === 0) {
              clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);
              challenge = sentChallenge(await send('login'));
            }
            const outcome = await verify(challenge, wrongFor(HELD_CODE));
            if (outcome.ok) throw new Error('a wrong code was accepted');
            outcomes.push(outcome.reason);
            challenge = outcome.challenge;
          }
          expect(outcomes.at(-1)).toBe('locked');
          expect(await mfa.lockedForSeconds(RECIPIENT.userId)).toBeGreaterThan(0);
        },
      );
    });

    it('treats a provider saying "locked" as a dead code', async () => {
      const locking: MfaProvider = {
        name: 'locking',
        channels: ['sms'],
        send: async () => ({}),
        verify: async () => 'locked',
      };
      mfa = buildService(locking);
      const challenge = sentChallenge(await send('login'));
      expect(await verify(challenge, '123456')).toMatchObject({ ok: false, reason: 'used_up' });
    });

    it('refuses a channel no configured provider delivers', async () => {
      const smsOnly: MfaProvider = {
        name: 'sms-only',
        channels: ['sms'],
        send: async () => ({}),
        verify: async () => 'invalid',
      };
      mfa = buildService(smsOnly);
      expect(
        await mfa.sendCode({
          recipient: RECIPIENT,
          scope: 'login',
          channel: 'voice',
          clientKey: '192.0.2.1',
        }),
      ).toEqual({
        ok: false,
        reason: 'channel_unavailable',
      });
    });
  });

  it('asks the provider for a window no longer than the code has existed', async () => {
    const windows: number[] = [];
    const recording: MfaProvider = {
      name: 'recording',
      channels: ['sms'],
      send: async () => ({}),
      verify: async ({ maxAgeMinutes }) => {
        windows.push(maxAgeMinutes);
        return 'invalid';
      },
    };
    mfa = buildService(recording);
    const challenge = sentChallenge(await send('login'));
    await verify(challenge, '123456');
    clock.advance(90_000);
    await verify(challenge, '123456');
    expect(windows).toEqual([1, 2]);
  });
  describe('one account, many sessions', () => {
    it('keeps the cooldown across logins: a second login within 30 seconds sends nothing and offers the pending code', async () => {
      // Threat: logging in again and again (each login a new session) to send code after code.
      const first = sentChallenge(await send('login'));
      const again = await send('login');
      expect(again).toMatchObject({ ok: false, reason: 'cooldown', pending: { id: first.id } });
      expect(consoleCodesPrinted(printed)).toBe(1);
    });

    it('voids the code of an earlier login when a later login sends a new one', async () => {
      const first = sentChallenge(await send('login'));
      const firstCode = lastConsoleCode(printed);
      clock.advance(30_000);
      const second = sentChallenge(await send('login'));
      expect(await verify(first, firstCode)).toMatchObject({ ok: false, reason: 'replaced' });
      expect((await verify(second, lastConsoleCode(printed))).ok).toBe(true);
    });

    it('lets a new code go out at once after the last one was accepted', async () => {
      const first = sentChallenge(await send('login'));
      expect((await verify(first, lastConsoleCode(printed))).ok).toBe(true);
      expect((await send('login')).ok).toBe(true);
    });

    it('accepts the right code exactly once when it arrives twice at the same moment', async () => {
      // Threat: two tabs (or two instances) turning one code into two signed-in sessions.
      const approving: MfaProvider = {
        name: 'approving',
        channels: ['sms'],
        send: async () => ({}),
        verify: async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return 'valid';
        },
      };
      mfa = buildService(approving);
      const challenge = sentChallenge(await send('login'));
      const results = await Promise.all([verify(challenge, '123456'), verify(challenge, '123456')]);
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect(results.find((result) => !result.ok)).toMatchObject({ reason: 'used_up' });
    });

    it('keeps a code for one scope out of the other scope’s cooldown', async () => {
      sentChallenge(await send('login'));
      expect((await send('admin')).ok).toBe(true);
    });
  });
});
