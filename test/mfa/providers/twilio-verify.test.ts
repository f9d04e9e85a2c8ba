import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TwilioConfig } from '../../../src/mfa/providers/config.js';
import type { MfaProvider, ProviderError, ProviderErrorKind } from '../../../src/mfa/provider.js';
import {
  createMemoryTwilioVerificationLedger,
  type TwilioVerificationLedger,
} from '../../../src/mfa/providers/twilio-verification-ledger.js';
import { createTwilioVerifyProvider } from '../../../src/mfa/providers/twilio-verify.js';
import type { RedisClient } from '../../../src/stores/redis/client.js';
import { createRedisTwilioVerificationLedger } from '../../../src/stores/redis/twilio-verification-ledger.js';
import { startFakeTwilio } from '../../fakes/twilio-verify-server.js';
import type { FailureMode, FakeTwilio } from '../../fakes/twilio-verify-server.js';
import { createTestClock, type TestClock } from '../../helpers/clock.js';
import { wrongFor } from '../../helpers/flows.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../../helpers/redis.js';
import {
  expectErrorsRevealNone,
  expectUnavailableWithin,
  outcomeOrErrorKind,
  PROVIDER_TEST_START,
  providerError,
  refusedOrigin,
  smsLoginChallenge,
} from '../../helpers/provider-unit.js';

// Fictional numbers only (+1 202 555 0100-0199).
const ALICE = '+12025550142';
const BOB = '+12025550143';
const ACCOUNT_SID = `AC${'0'.repeat(32)}`;
const AUTH_TOKEN = 'fake-auth-token-not-a-secret';
const SERVICE_SID = `VA${'1'.repeat(32)}`;

let fake: FakeTwilio;
let clock: TestClock;

beforeEach(async () => {
  clock = createTestClock(PROVIDER_TEST_START);
  fake = await startFakeTwilio({
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    serviceSid: SERVICE_SID,
    now: clock.now,
  });
});

afterEach(() => fake.close());

const FIVE_MINUTES = 5 * 60_000;

function provider(
  overrides: Partial<TwilioConfig> = {},
  timeoutMs = 2_000,
  codeTtlMs?: number,
  ledger?: TwilioVerificationLedger,
) {
  return createTwilioVerifyProvider({
    config: {
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      verifyServiceSid: SERVICE_SID,
      baseUrl: fake.baseUrl,
      ...overrides,
    },
    timeoutMs,
    now: () => clock.now().getTime(),
    codeTtlMs,
    ledger,
  });
}

const lastRequest = () => fake.requests.at(-1)!;
const challenge = (sender: MfaProvider) => smsLoginChallenge(sender, fake, ALICE);

describe('Twilio Verify provider', () => {
  it('is named twilio and offers sms and voice', () => {
    expect(provider().name).toBe('twilio');
    expect(provider().channels).toEqual(['sms', 'voice']);
  });

  describe('sending', () => {
    it('starts a verification by form POST with Basic auth, and keeps the VE sid as the handle', async () => {
      const { handle } = await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });

      expect(lastRequest()).toMatchObject({
        method: 'POST',
        path: `/v2/Services/${SERVICE_SID}/Verifications`,
        auth: 'basic',
        status: 201,
        body: { To: ALICE, Channel: 'sms' },
      });
      expect(handle).toMatch(/^VE[0-9a-f]{32}$/);
      expect(fake.sentCodes()).toEqual([expect.objectContaining({ sid: handle, to: ALICE, channel: 'sms' })]);
    });

    it('says a send was delivered when its ledger fails after Twilio sent the code', async () => {
      // Threat: a shared store failing after each send, read as "nothing went out", would hand
      // every limit back and make each retry a free message to the same phone.
      const memory = createMemoryTwilioVerificationLedger(clock);
      const failingLedger: TwilioVerificationLedger = {
        ...memory,
        record: async () => {
          throw new Error('the shared store did not answer');
        },
      };
      const failure = await provider({}, 2_000, FIVE_MINUTES, failingLedger)
        .send({ to: ALICE, channel: 'sms', scope: 'login' })
        .catch((error: unknown) => error as ProviderError);
      expect(failure).toMatchObject({ name: 'ProviderError', provider: 'twilio', delivered: 'yes' });
      expect(fake.sentCodes()).toHaveLength(1);
    });

    it('asks for a call when the channel is voice', async () => {
      await provider().send({ to: ALICE, channel: 'voice', scope: 'admin' });

      expect(lastRequest().body).toEqual({ To: ALICE, Channel: 'call' });
    });

    it('cancels the pending verification of another scope first, so one code never serves two scopes', async () => {
      const twilio = provider();
      const login = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const admin = await twilio.send({ to: ALICE, channel: 'sms', scope: 'admin' });

      expect(admin.handle).not.toBe(login.handle);
      expect(fake.verification(login.handle!)?.status).toBe('canceled');
      const loginCode = fake.sentCodes()[0]!.code;
      // The login code, even if Twilio would have re-sent it, cannot pass the admin check...
      const adminCode = fake.lastCodeFor(ALICE)!;
      if (loginCode !== adminCode) {
        expect(
          await twilio.verify({
            to: ALICE,
            scope: 'admin',
            code: loginCode,
            handle: admin.handle,
            maxAgeMinutes: 5,
          }),
        ).toBe('invalid');
      }
      // ...and the cancelled login verification is gone.
      expect(
        await twilio.verify({
          to: ALICE,
          scope: 'login',
          code: loginCode,
          handle: login.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('expired');
      expect(
        await twilio.verify({
          to: ALICE,
          scope: 'admin',
          code: adminCode,
          handle: admin.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('valid');
    });

    it('leaves a young verification of unknown origin (an earlier process) alone, and replaces it once no code of it can be accepted', async () => {
      // Another process (before a restart) started a verification for this number: whose, this
      // process cannot tell, so it must not take that code from its owner.
      const before = await provider({}, 2_000, FIVE_MINUTES).send({
        to: ALICE,
        channel: 'sms',
        scope: 'login',
        account: 1,
      });

      const twilio = provider({}, 2_000, FIVE_MINUTES);
      const refused = await providerError(
        twilio.send({ to: ALICE, channel: 'sms', scope: 'admin', account: 1 }),
      );
      expect(refused.kind).toBe('rate_limited');
      expect(refused.retryAfterSeconds).toBe(300);
      expect(fake.verification(before.handle!)?.status).toBe('pending');

      // Past the site's code lifetime no challenge can accept it: it is cancelled and replaced.
      clock.advanceMinutes(5);
      const admin = await twilio.send({ to: ALICE, channel: 'sms', scope: 'admin', account: 1 });
      expect(admin.handle).not.toBe(before.handle);
      expect(fake.verification(before.handle!)?.status).toBe('canceled');
      const loginCode = fake.sentCodes()[0]!.code;
      expect(
        await twilio.verify({
          to: ALICE,
          scope: 'login',
          code: loginCode,
          handle: before.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('expired');
    });

    describe('two accounts sharing a number', () => {
      // The attack: accounts registered with a victim's number ask for codes, and each Twilio send
      // for the number would cancel (or re-send) the owner's pending code.
      const OWNER = 1;
      const STRANGER = 2;

      it("never cancels or re-sends the owner's pending code; the other account waits until it can no longer be accepted", async () => {
        const twilio = provider({}, 2_000, FIVE_MINUTES);
        const owner = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });
        const ownerCode = fake.lastCodeFor(ALICE)!;

        const refused = await providerError(
          twilio.send({ to: ALICE, channel: 'voice', scope: 'login', account: STRANGER }),
        );

        expect(refused.kind).toBe('rate_limited');
        expect(refused.retryAfterSeconds).toBe(300);
        expect(fake.sentCodes()).toHaveLength(1);
        expect(fake.verification(owner.handle!)?.status).toBe('pending');
        expect(
          await twilio.verify({
            to: ALICE,
            scope: 'login',
            code: ownerCode,
            handle: owner.handle,
            maxAgeMinutes: 1,
          }),
        ).toBe('valid');
      });

      it('lets the other account have its own code once the owner has used theirs', async () => {
        const twilio = provider({}, 2_000, FIVE_MINUTES);
        const owner = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });
        await twilio.verify({
          to: ALICE,
          scope: 'login',
          code: fake.lastCodeFor(ALICE)!,
          handle: owner.handle,
          maxAgeMinutes: 1,
        });

        const other = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: STRANGER });

        expect(other.handle).not.toBe(owner.handle);
        expect(
          await twilio.verify({
            to: ALICE,
            scope: 'login',
            code: fake.lastCodeFor(ALICE)!,
            handle: other.handle,
            maxAgeMinutes: 1,
          }),
        ).toBe('valid');
      });

      it('lets the other account have its own code once the owner’s can no longer be accepted, cancelling that one', async () => {
        const twilio = provider({}, 2_000, FIVE_MINUTES);
        const owner = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });
        clock.advanceMinutes(5);

        const other = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: STRANGER });

        expect(other.handle).not.toBe(owner.handle);
        expect(fake.verification(owner.handle!)?.status).toBe('canceled');
      });

      it('keeps both apart when their sends race: one goes out, the other is refused, nothing is cancelled', async () => {
        const twilio = provider({}, 2_000, FIVE_MINUTES);

        const results = await Promise.allSettled([
          twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER }),
          twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: STRANGER }),
        ]);

        const sent = results.filter((result) => result.status === 'fulfilled');
        const refused = results.filter((result) => result.status === 'rejected');
        expect(sent).toHaveLength(1);
        expect(refused).toHaveLength(1);
        expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ kind: 'rate_limited' });
        const { handle } = (sent[0] as PromiseFulfilledResult<{ handle?: string }>).value;
        expect(fake.verification(handle!)?.status).toBe('pending');
      });

      it('says the refusal delivered nothing when it is refused before Twilio is asked', async () => {
        const twilio = provider({}, 2_000, FIVE_MINUTES);
        await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });

        const refused = await providerError(
          twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: STRANGER }),
        );

        expect(refused).toMatchObject({ kind: 'rate_limited', delivered: 'no' });
      });

      it('says the refusal delivered a message when Twilio had already re-sent the pending code', async () => {
        // Another process (or this one before a restart) started the owner's code: this adapter
        // learns of it only from Twilio's answer, which has re-sent that code to the phone.
        await provider({}, 2_000, FIVE_MINUTES).send({
          to: ALICE,
          channel: 'sms',
          scope: 'login',
          account: OWNER,
        });

        const refused = await providerError(
          provider({}, 2_000, FIVE_MINUTES).send({
            to: ALICE,
            channel: 'voice',
            scope: 'login',
            account: STRANGER,
          }),
        );

        expect(refused).toMatchObject({ kind: 'rate_limited', delivered: 'yes' });
        expect(fake.sentCodes().map((sent) => sent.channel)).toEqual(['sms', 'call']);
      });

      describe('when the account asking has completed a code to the number before', () => {
        // The threat: a stranger's account, registered with the owner's number, asks for a code
        // just before the owner does, again and again, and the owner never gets one.
        it('cancels a code pending for an account that never has, and gets its own', async () => {
          const twilio = provider({}, 2_000, FIVE_MINUTES);
          const stranger = await twilio.send({
            to: ALICE,
            channel: 'sms',
            scope: 'login',
            account: STRANGER,
          });

          const owner = await twilio.send({
            to: ALICE,
            channel: 'sms',
            scope: 'login',
            account: OWNER,
            provenHolder: true,
          });

          expect(fake.verification(stranger.handle!)?.status).toBe('canceled');
          expect(
            await twilio.verify({
              to: ALICE,
              scope: 'login',
              code: fake.lastCodeFor(ALICE)!,
              handle: owner.handle,
              maxAgeMinutes: 1,
            }),
          ).toBe('valid');
        });

        it('cancels a young pending code whose starter this process does not know', async () => {
          const elsewhere = await provider({}, 2_000, FIVE_MINUTES).send({
            to: ALICE,
            channel: 'sms',
            scope: 'login',
            account: STRANGER,
          });

          const owner = await provider({}, 2_000, FIVE_MINUTES).send({
            to: ALICE,
            channel: 'sms',
            scope: 'login',
            account: OWNER,
            provenHolder: true,
          });

          expect(owner.handle).not.toBe(elsewhere.handle);
          expect(fake.verification(elsewhere.handle!)?.status).toBe('canceled');
        });

        it('still never cancels the code of another account that has too', async () => {
          const twilio = provider({}, 2_000, FIVE_MINUTES);
          const first = await twilio.send({
            to: ALICE,
            channel: 'sms',
            scope: 'login',
            account: OWNER,
            provenHolder: true,
          });

          const refused = await providerError(
            twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: 3, provenHolder: true }),
          );

          expect(refused.kind).toBe('rate_limited');
          expect(fake.verification(first.handle!)?.status).toBe('pending');
        });
      });

      describe('when the verification API asks (a key, not an account)', () => {
        // The threat: an application holding a key voiding a person's pending login code without
        // a word, or another application's code, by sending to the same number.
        it("never cancels an account's pending code, even claiming to hold the phone", async () => {
          const twilio = provider({}, 2_000, FIVE_MINUTES);
          const owner = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });

          const refused = await providerError(
            twilio.send({ to: ALICE, channel: 'sms', scope: 'api', apiKey: OWNER, provenHolder: true }),
          );

          expect(refused).toMatchObject({ kind: 'rate_limited', delivered: 'no' });
          expect(fake.verification(owner.handle!)?.status).toBe('pending');
        });

        it("never cancels another key's pending code, though the key's number is an account's", async () => {
          const twilio = provider({}, 2_000, FIVE_MINUTES);
          const first = await twilio.send({ to: ALICE, channel: 'sms', scope: 'api', apiKey: 1 });

          expect(
            (await providerError(twilio.send({ to: ALICE, channel: 'sms', scope: 'api', apiKey: 2 }))).kind,
          ).toBe('rate_limited');
          expect(
            (await providerError(twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: 1 })))
              .kind,
          ).toBe('rate_limited');
          expect(fake.verification(first.handle!)?.status).toBe('pending');
        });

        it("replaces the same key's pending code, and gives way to the phone's proven holder", async () => {
          const twilio = provider({}, 2_000, FIVE_MINUTES);
          const first = await twilio.send({ to: ALICE, channel: 'sms', scope: 'api', apiKey: 1 });
          const second = await twilio.send({ to: ALICE, channel: 'voice', scope: 'api', apiKey: 1 });
          expect(fake.verification(first.handle!)?.status).toBe('canceled');

          await twilio.send({
            to: ALICE,
            channel: 'sms',
            scope: 'login',
            account: OWNER,
            provenHolder: true,
          });
          expect(fake.verification(second.handle!)?.status).toBe('canceled');
        });
      });

      it("still cancels the same account's pending code of another scope", async () => {
        const twilio = provider({}, 2_000, FIVE_MINUTES);
        const login = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });
        const admin = await twilio.send({ to: ALICE, channel: 'sms', scope: 'admin', account: OWNER });

        expect(admin.handle).not.toBe(login.handle);
        expect(fake.verification(login.handle!)?.status).toBe('canceled');
      });
    });

    /**
     * Two instances of the site behind a load balancer: each has its own adapter, and they share
     * the ledger of who started which verification (memory stands in for one shared store here).
     */
    function describeTwoInstances(
      backend: string,
      openLedgers: () => Promise<{
        a: TwilioVerificationLedger;
        b: TwilioVerificationLedger;
        close(): Promise<void>;
      }>,
      options: { skip?: boolean } = {},
    ) {
      describe.skipIf(options.skip ?? false)(`two instances sharing the ledger (${backend})`, () => {
        const OWNER = 1;
        const STRANGER = 2;
        let ledgers: Awaited<ReturnType<typeof openLedgers>>;
        let onA: MfaProvider;
        let onB: MfaProvider;
        beforeEach(async () => {
          ledgers = await openLedgers();
          onA = provider({}, 2_000, FIVE_MINUTES, ledgers.a);
          onB = provider({}, 2_000, FIVE_MINUTES, ledgers.b);
        });
        afterEach(() => ledgers.close());

        it("gives the owner a new code on B, replacing the one A started (not 'another account's code is pending')", async () => {
          const login = await onA.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });

          const admin = await onB.send({ to: ALICE, channel: 'sms', scope: 'admin', account: OWNER });

          expect(admin.handle).not.toBe(login.handle);
          expect(fake.verification(login.handle!)?.status).toBe('canceled');
          expect(
            await onA.verify({
              to: ALICE,
              scope: 'admin',
              code: fake.lastCodeFor(ALICE)!,
              handle: admin.handle,
              maxAgeMinutes: 5,
            }),
          ).toBe('valid');
        });

        it("refuses another account on B without asking Twilio, so the owner's code from A is neither cancelled nor re-sent", async () => {
          const owner = await onA.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });

          const refused = await providerError(
            onB.send({ to: ALICE, channel: 'sms', scope: 'login', account: STRANGER }),
          );

          expect(refused).toMatchObject({ kind: 'rate_limited', retryAfterSeconds: 300 });
          expect(fake.sentCodes()).toHaveLength(1);
          expect(fake.verification(owner.handle!)?.status).toBe('pending');
        });

        it('refuses on B a check of the sid A started for another scope, without asking Twilio', async () => {
          const login = await onA.send({ to: ALICE, channel: 'sms', scope: 'login', account: OWNER });
          const requests = fake.requests.length;

          expect(
            await onB.verify({
              to: ALICE,
              scope: 'admin',
              code: fake.lastCodeFor(ALICE)!,
              handle: login.handle,
              maxAgeMinutes: 5,
            }),
          ).toBe('invalid');
          expect(fake.requests.length).toBe(requests);
        });
      });
    }

    describeTwoInstances('memory', async () => {
      const shared = createMemoryTwilioVerificationLedger(clock);
      return { a: shared, b: shared, close: async () => undefined };
    });

    describeTwoInstances(
      'redis',
      async () => {
        const keyPrefix = randomKeyPrefix();
        const clients: RedisClient[] = await Promise.all([connectTestRedis(), connectTestRedis()]);
        const [a, b] = clients.map((client) =>
          createRedisTwilioVerificationLedger(client, { keyPrefix, clock }),
        );
        return {
          a: a!,
          b: b!,
          async close() {
            await deleteKeysWithPrefix(clients[0]!, keyPrefix);
            for (const client of clients) client.destroy();
          },
        };
      },
      { skip: !isRedisAvailable() },
    );

    it('refuses a check with a sid it started for another scope or number', async () => {
      const twilio = provider();
      const login = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE)!;
      const checks = fake.requests.length;

      expect(
        await twilio.verify({ to: ALICE, scope: 'admin', code, handle: login.handle, maxAgeMinutes: 5 }),
      ).toBe('invalid');
      expect(
        await twilio.verify({ to: BOB, scope: 'login', code, handle: login.handle, maxAgeMinutes: 5 }),
      ).toBe('invalid');
      expect(fake.requests.length).toBe(checks);
    });

    it('gets 60203 from Twilio after 5 sends to one number in 10 minutes, as rate_limited with Retry-After', async () => {
      const twilio = provider();
      for (let send = 0; send < 5; send++) await twilio.send({ to: ALICE, channel: 'sms', scope: 'login' });

      const error = await providerError(twilio.send({ to: ALICE, channel: 'sms', scope: 'login' }));

      expect(error.kind).toBe('rate_limited');
      expect(error.retryAfterSeconds).toBeGreaterThan(0);
      expect(error.message).toContain('60203');
    });
  });

  describe('verifying', () => {
    it('checks by VerificationSid (never by To): a wrong code is invalid, the right one valid', async () => {
      const twilio = provider();
      const { handle, code } = await challenge(twilio);

      expect(
        await twilio.verify({ to: ALICE, scope: 'login', code: wrongFor(code), handle, maxAgeMinutes: 5 }),
      ).toBe('invalid');
      expect(await twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'valid',
      );
      expect(lastRequest()).toMatchObject({
        path: `/v2/Services/${SERVICE_SID}/VerificationCheck`,
        body: { VerificationSid: handle, Code: code },
      });
      expect(lastRequest().body).not.toHaveProperty('To');
    });

    it('reports an approved code used again as expired (Twilio deleted it: 20404)', async () => {
      const twilio = provider();
      const { handle, code } = await challenge(twilio);
      await twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 });

      expect(await twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'expired',
      );
      expect(lastRequest().status).toBe(404);
    });

    it('reports a code older than 10 minutes as expired', async () => {
      const twilio = provider();
      const { handle, code } = await challenge(twilio);
      clock.advanceMinutes(10);

      expect(await twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 10 })).toBe(
        'expired',
      );
    });

    it("reports 'locked' after 5 checks (60202), even for the right code", async () => {
      const twilio = provider();
      const { handle, code } = await challenge(twilio);
      for (let check = 0; check < 5; check++) {
        expect(
          await twilio.verify({ to: ALICE, scope: 'login', code: wrongFor(code), handle, maxAgeMinutes: 5 }),
        ).toBe('invalid');
      }

      expect(await twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'locked',
      );
      expect(lastRequest().status).toBe(429);
    });

    it('cancels a verification by its sid', async () => {
      const twilio = provider();
      const { handle } = await twilio.send({ to: ALICE, channel: 'sms', scope: 'login' });
      await twilio.cancel!({ to: ALICE, scope: 'login', handle });

      expect(lastRequest()).toMatchObject({
        path: `/v2/Services/${SERVICE_SID}/Verifications/${handle}`,
        body: { Status: 'canceled' },
        status: 200,
      });
      // Cancelling again (already gone) is not an error.
      await twilio.cancel!({ to: ALICE, scope: 'login', handle });
    });
  });

  describe('failures', () => {
    it.each<[FailureMode, ProviderErrorKind]>([
      [400, 'invalid_number'],
      [401, 'auth'],
      [403, 'invalid_number'],
      [429, 'rate_limited'],
      [500, 'unavailable'],
      [503, 'unavailable'],
      ['garbage', 'unavailable'],
    ])('a send answered with %s raises a %s ProviderError', async (mode, kind) => {
      fake.failNext(mode);
      const error = await providerError(provider().send({ to: ALICE, channel: 'sms', scope: 'login' }));

      expect(error.kind).toBe(kind);
      expect(error.provider).toBe('twilio');
    });

    it('rejects a number Twilio calls invalid (60200) as invalid_number', async () => {
      const error = await providerError(
        provider().send({ to: '12025550142', channel: 'sms', scope: 'login' }),
      );

      expect(lastRequest().status).toBe(400);
      expect(error.kind).toBe('invalid_number');
    });

    it('treats wrong credentials (20003) and an unknown Service as auth failures', async () => {
      const wrongToken = await providerError(
        provider({ authToken: 'wrong' }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );
      const wrongService = await providerError(
        provider({ verifyServiceSid: `VA${'2'.repeat(32)}` }).send({
          to: ALICE,
          channel: 'sms',
          scope: 'login',
        }),
      );

      expect(wrongToken.kind).toBe('auth');
      expect(wrongService.kind).toBe('auth');
    });

    it('passes on Retry-After from a 429', async () => {
      fake.failNext(429, { retryAfter: '45' });
      const error = await providerError(provider().send({ to: ALICE, channel: 'voice', scope: 'login' }));

      expect(error).toMatchObject({ kind: 'rate_limited', retryAfterSeconds: 45 });
    });

    it.each<[FailureMode, string]>([
      [401, 'auth'],
      [500, 'unavailable'],
      ['garbage', 'unavailable'],
    ])('a check answered with %s gives %s, never valid', async (mode, expected) => {
      const twilio = provider();
      const { handle, code } = await challenge(twilio);
      fake.failNext(mode);

      const outcome = await outcomeOrErrorKind(
        twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 }),
      );

      expect(outcome).toBe(expected);
    });

    it.each(['send', 'verify'] as const)(
      'gives up on a hung %s within timeoutMs, as unavailable',
      async (action) => {
        fake.setMode('hang');
        const twilio = provider({}, 300);

        const error = await expectUnavailableWithin(1_000, () =>
          action === 'send'
            ? twilio.send({ to: ALICE, channel: 'sms', scope: 'login' })
            : twilio.verify({
                to: ALICE,
                scope: 'login',
                code: '123456',
                handle: `VE${'3'.repeat(32)}`,
                maxAgeMinutes: 5,
              }),
        );
        // The request went out and no answer came: a code may have been sent.
        expect(error.delivered).toBe('maybe');
      },
    );

    it('keeps one deadline for the whole send, the cancel of a pending verification included', async () => {
      const twilio = provider({}, 300);
      await twilio.send({ to: ALICE, channel: 'sms', scope: 'login' });
      fake.setMode('hang');

      await expectUnavailableWithin(600, () => twilio.send({ to: ALICE, channel: 'sms', scope: 'admin' }));
    });

    it('treats a refused connection as unavailable', async () => {
      const baseUrl = await refusedOrigin();

      const error = await providerError(
        provider({ baseUrl }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );

      expect(error.kind).toBe('unavailable');
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.delivered).toBe('no');
    });

    it('keeps credentials, codes and phone numbers out of error messages', async () => {
      const twilio = provider();
      const { handle, code } = await challenge(twilio);
      const errors: ProviderError[] = [];
      for (const mode of [400, 401, 429, 500, 'garbage'] as const) {
        // Every request of the send (the cancel of the pending one too) gets this answer.
        fake.setMode(mode);
        errors.push(await providerError(twilio.send({ to: ALICE, channel: 'sms', scope: 'login' })));
      }
      fake.setMode('ok');
      fake.failNext(500);
      errors.push(
        await providerError(twilio.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })),
      );
      fake.setMode('hang');
      errors.push(await providerError(provider({}, 200).send({ to: ALICE, channel: 'sms', scope: 'login' })));

      expectErrorsRevealNone(errors, [AUTH_TOKEN, '2025550142', code]);
    });
  });
});
