import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BandwidthConfig } from '../../../src/mfa/providers/config.js';
import type {
  Channel,
  ProviderError,
  ProviderErrorKind,
  Scope,
  VerifyOutcome,
} from '../../../src/mfa/provider.js';
import { createBandwidthProvider } from '../../../src/mfa/providers/bandwidth.js';
import { TEST_CODE_TEXTS } from '../../helpers/fraud.js';
import { startFakeBandwidth } from '../../fakes/bandwidth-server.js';
import type { FakeBandwidth, FakeBandwidthMode } from '../../fakes/bandwidth-server.js';
import { createTestClock, type TestClock } from '../../helpers/clock.js';
import { wrongFor } from '../../helpers/flows.js';
import {
  expectErrorsRevealNone,
  expectUnavailableWithin,
  outcomeOrErrorKind,
  PROVIDER_TEST_START,
  providerError,
  refusedOrigin,
} from '../../helpers/provider-unit.js';

// Fictional numbers only (+1 202 555 0100-0199).
const ALICE = '+12025550142';
const BOB = '+12025550143';
const FROM = '+12025550100';
const ACCOUNT = '9900001';
const USERNAME = 'mfa-user';
const PASSWORD = 'fake-password-not-a-secret';
const MESSAGING_APP = 'messaging-app-0001';
const VOICE_APP = 'voice-app-0001';

/** The scope the provider sends for one challenge: the scope word, a dash and 16 base64url characters. */
const LOGIN_CHALLENGE = /^login-[A-Za-z0-9_-]{16}$/;
const ADMIN_CHALLENGE = /^admin-[A-Za-z0-9_-]{16}$/;

let fake: FakeBandwidth;
let clock: TestClock;

beforeEach(async () => {
  clock = createTestClock(PROVIDER_TEST_START);
  fake = await startFakeBandwidth({
    accountId: ACCOUNT,
    username: USERNAME,
    password: PASSWORD,
    messagingApplicationId: MESSAGING_APP,
    voiceApplicationId: VOICE_APP,
    now: clock.now,
  });
});

afterEach(() => fake.close());

function configFor(overrides: Partial<BandwidthConfig> = {}): BandwidthConfig {
  return {
    accountId: ACCOUNT,
    username: USERNAME,
    password: PASSWORD,
    voiceApplicationId: VOICE_APP,
    messagingApplicationId: MESSAGING_APP,
    fromNumber: FROM,
    baseUrl: fake.baseUrl,
    ...overrides,
  };
}

function provider(overrides: Partial<BandwidthConfig> = {}, timeoutMs = 2_000) {
  return createBandwidthProvider({
    config: configFor(overrides),
    codeDigits: 6,
    timeoutMs,
    texts: TEST_CODE_TEXTS,
  });
}

type BandwidthProvider = ReturnType<typeof provider>;

/** Sends one code and returns what the service keeps (the handle) and what the user receives (the code). */
async function challenge(
  bandwidth: BandwidthProvider,
  { to = ALICE, channel = 'sms', scope = 'login' }: { to?: string; channel?: Channel; scope?: Scope } = {},
): Promise<{ handle: string; code: string }> {
  const { handle } = await bandwidth.send({ to, channel, scope });
  expect(handle).toEqual(expect.any(String));
  const code = fake.sentCodes().findLast((sent) => sent.scope === handle)?.code;
  expect(code).toMatch(/^\d{6}$/);
  return { handle: handle!, code: code! };
}

const lastRequest = () => fake.requests.at(-1)!;

describe('Bandwidth MFA provider', () => {
  it('is named bandwidth and offers sms and voice', () => {
    const bandwidth = provider();
    expect(bandwidth.name).toBe('bandwidth');
    expect(bandwidth.channels).toEqual(['sms', 'voice']);
  });

  describe('sending', () => {
    it('sends an SMS code through /code/messaging with the messaging application, in a scope of its own that it returns as the handle', async () => {
      const result = await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });

      expect(lastRequest()).toMatchObject({
        method: 'POST',
        path: `/api/v1/accounts/${ACCOUNT}/code/messaging`,
        auth: 'basic',
        status: 200,
        body: {
          to: ALICE,
          from: FROM,
          applicationId: MESSAGING_APP,
          scope: expect.stringMatching(LOGIN_CHALLENGE),
          digits: 6,
        },
      });
      // The handle is the scope sent, not the messageId Bandwidth answered with.
      expect(result.handle).toBe((lastRequest().body as { scope: string }).scope);
      expect(fake.sentCodes()).toEqual([
        {
          to: ALICE,
          scope: result.handle,
          channel: 'sms',
          code: expect.stringMatching(/^\d{6}$/),
          at: clock.now(),
        },
      ]);
    });

    it('places a voice code through /code/voice with the voice application, in a scope of its own that it returns as the handle', async () => {
      const result = await provider().send({ to: ALICE, channel: 'voice', scope: 'admin' });

      expect(lastRequest()).toMatchObject({
        path: `/api/v1/accounts/${ACCOUNT}/code/voice`,
        status: 200,
        body: {
          to: ALICE,
          from: FROM,
          applicationId: VOICE_APP,
          scope: expect.stringMatching(ADMIN_CHALLENGE),
          digits: 6,
        },
      });
      expect(result.handle).toBe((lastRequest().body as { scope: string }).scope);
      expect(fake.sentCodes()[0]).toMatchObject({ channel: 'voice', scope: result.handle });
    });

    it('gives every challenge a scope of its own: the scope word, a dash and 16 random characters, within Bandwidth’s 25', async () => {
      const bandwidth = provider();
      const handles: string[] = [];
      for (const channel of ['sms', 'sms', 'voice'] as const) {
        handles.push((await bandwidth.send({ to: ALICE, channel, scope: 'login' })).handle!);
      }
      handles.push((await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'admin' })).handle!);

      expect(handles.slice(0, 3)).toEqual(Array(3).fill(expect.stringMatching(LOGIN_CHALLENGE)));
      expect(handles[3]).toMatch(ADMIN_CHALLENGE);
      expect(new Set(handles).size).toBe(handles.length);
      for (const handle of handles) expect(handle.length).toBeLessThanOrEqual(25);
      expect(fake.requests.map((request) => (request.body as { scope: string }).scope)).toEqual(handles);
    });

    it.each<[Channel, Scope]>([
      ['sms', 'login'],
      ['sms', 'admin'],
      ['voice', 'login'],
      ['voice', 'admin'],
    ])(
      'sends a %s %s message naming the site, with {CODE} for Bandwidth to fill in and never a code of its own',
      async (channel, scope) => {
        await provider().send({ to: ALICE, channel, scope });

        const { message } = lastRequest().body as { message: string };
        expect(message).toContain('Keyhole');
        // Once: whether Bandwidth fills in a second {CODE} is not documented.
        expect(message.split('{CODE}')).toHaveLength(2);
        // The admin scope is said in words (a login code is the plain "Keyhole code").
        if (scope === 'admin') expect(message).toContain('admin');
        else expect(message).not.toContain('admin');
        if (channel === 'sms') expect(message).toMatch(/\n\n@keyhole\.example #\{CODE\}$/);
        // The scope sent is the challenge's own, so Bandwidth's {SCOPE} would read out random characters.
        expect(message).not.toContain('{SCOPE}');
        expect(message).not.toMatch(/\d/);
      },
    );

    it('sends bodies that pass the OpenAPI schema shipped in bandwidth-sdk (the fake answers 400 otherwise)', async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);
      await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 });

      expect(fake.requests.map((request) => request.status)).toEqual([200, 200]);
    });

    it('is checked by a fake that really rejects bodies outside the schema', async () => {
      const outOfRange = createBandwidthProvider({
        config: configFor(),
        codeDigits: 9,
        texts: TEST_CODE_TEXTS,
      });
      const error = await providerError(outOfRange.send({ to: ALICE, channel: 'sms', scope: 'login' }));

      expect(lastRequest().status).toBe(400);
      expect(error.kind).toBe('invalid_number');
      expect(fake.sentCodes()).toEqual([]);
    });

    it('works when the base URL has no /api/v1 (the fake routes both forms)', async () => {
      await provider({ baseUrl: fake.origin }).send({ to: ALICE, channel: 'sms', scope: 'login' });

      expect(lastRequest()).toMatchObject({ path: `/accounts/${ACCOUNT}/code/messaging`, status: 200 });
    });
  });

  describe('verifying', () => {
    it('checks the code in the challenge’s own scope: a correct code is valid, a wrong one invalid', async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);

      expect(
        await bandwidth.verify({
          to: ALICE,
          scope: 'login',
          code: wrongFor(code),
          handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('invalid');
      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'valid',
      );
      expect(lastRequest().body).toEqual({ to: ALICE, scope: handle, code, expirationTimeInMinutes: 5 });
    });

    it('keeps numbers apart: a code does not verify for another number, even with its handle', async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);

      expect(await bandwidth.verify({ to: BOB, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'valid',
      );
    });

    it('does not accept a resent-away code: the earlier challenge’s code fails with the newer challenge’s handle', async () => {
      const bandwidth = provider();
      const first = await challenge(bandwidth);
      let resent = await challenge(bandwidth);
      // Two challenges can draw the same six digits (one in a million); draw again so the spec means something.
      while (resent.code === first.code) resent = await challenge(bandwidth);

      expect(
        await bandwidth.verify({
          to: ALICE,
          scope: 'login',
          code: first.code,
          handle: resent.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('invalid');
      expect(lastRequest().body).toMatchObject({ scope: resent.handle, code: first.code });
      expect(
        await bandwidth.verify({
          to: ALICE,
          scope: 'login',
          code: resent.code,
          handle: resent.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('valid');
    });

    it('does not accept another session’s code for the same number and scope word', async () => {
      // Two sessions (here two provider instances, as two app processes would be) each send Alice a login code.
      const mine = await challenge(provider());
      let theirs = await challenge(provider());
      while (theirs.code === mine.code) theirs = await challenge(provider());
      const bandwidth = provider();

      expect(
        await bandwidth.verify({
          to: ALICE,
          scope: 'login',
          code: theirs.code,
          handle: mine.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('invalid');
      expect(
        await bandwidth.verify({
          to: ALICE,
          scope: 'login',
          code: mine.code,
          handle: theirs.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('invalid');
      expect(
        await bandwidth.verify({
          to: ALICE,
          scope: 'login',
          code: mine.code,
          handle: mine.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('valid');
    });

    it.each<[Scope, Scope]>([
      ['admin', 'login'],
      ['login', 'admin'],
    ])(
      'refuses an %s challenge’s handle and code when checking the %s scope, without asking Bandwidth',
      async (sentScope, checkedScope) => {
        const bandwidth = provider();
        const { handle, code } = await challenge(bandwidth, { scope: sentScope });
        const requestsBefore = fake.requests.length;

        expect(
          await bandwidth.verify({ to: ALICE, scope: checkedScope, code, handle, maxAgeMinutes: 5 }),
        ).toBe('invalid');
        expect(fake.requests).toHaveLength(requestsBefore);
      },
    );

    it.each<[string, string | undefined]>([
      ['a missing handle', undefined],
      ['an empty handle', ''],
      ['the bare scope word', 'login'],
      [
        'a messageId (what the handle was before challenges had scopes of their own)',
        '1762077600000a1b2c3d4e5f60718',
      ],
    ])('refuses %s without asking Bandwidth', async (_, handle) => {
      const bandwidth = provider();
      const { code } = await challenge(bandwidth);
      const requestsBefore = fake.requests.length;

      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
      expect(fake.requests).toHaveLength(requestsBefore);
    });

    it('lets the app choose the window: maxAgeMinutes is sent as expirationTimeInMinutes', async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);
      clock.advanceMinutes(6);

      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 10 })).toBe(
        'valid',
      );
    });

    it.each([
      [0, 1],
      [1, 1],
      [5.9, 5],
      [15, 15],
      [60, 15],
      [Number.NaN, 1],
    ])('clamps a window of %s minutes to %s (Bandwidth accepts 1 to 15)', async (maxAgeMinutes, sent) => {
      const bandwidth = provider();
      const { handle } = await challenge(bandwidth);
      await bandwidth.verify({ to: ALICE, scope: 'login', code: '123456', handle, maxAgeMinutes });

      expect(lastRequest()).toMatchObject({
        status: 200,
        body: { scope: handle, expirationTimeInMinutes: sent },
      });
    });

    it('does not make codes single use (the fake, like the worst case, accepts a code twice), so the service must', async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth, { scope: 'admin' });

      expect(await bandwidth.verify({ to: ALICE, scope: 'admin', code, handle, maxAgeMinutes: 5 })).toBe(
        'valid',
      );
      expect(await bandwidth.verify({ to: ALICE, scope: 'admin', code, handle, maxAgeMinutes: 5 })).toBe(
        'valid',
      );
    });

    it("reports 'locked' once Bandwidth refuses more attempts with 429, even for the right code", async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);
      for (let attempt = 0; attempt < 5; attempt++) {
        expect(
          await bandwidth.verify({
            to: ALICE,
            scope: 'login',
            code: wrongFor(code),
            handle,
            maxAgeMinutes: 5,
          }),
        ).toBe('invalid');
      }

      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'locked',
      );
      expect(lastRequest().status).toBe(429);
    });
  });

  describe('failures', () => {
    it.each<[FakeBandwidthMode, ProviderErrorKind]>([
      [400, 'invalid_number'],
      [401, 'auth'],
      [403, 'auth'],
      [429, 'rate_limited'],
      [500, 'unavailable'],
      ['garbage', 'unavailable'],
      // A 2xx without a string messageId: not Bandwidth talking, so whether a code went out is unknown.
      ['unexpected', 'unavailable'],
    ])('a send answered with %s raises a %s ProviderError', async (mode, kind) => {
      fake.failNext(mode);
      const error = await providerError(provider().send({ to: ALICE, channel: 'sms', scope: 'login' }));

      expect(error.kind).toBe(kind);
      expect(error.provider).toBe('bandwidth');
    });

    it('a voice send answered without a string callId raises an unavailable ProviderError', async () => {
      fake.failNext('unexpected');
      const error = await providerError(provider().send({ to: ALICE, channel: 'voice', scope: 'login' }));

      expect(error.kind).toBe('unavailable');
    });

    it('passes on Retry-After from a 429 on send', async () => {
      fake.failNext(429, { retryAfter: '30' });
      const error = await providerError(provider().send({ to: ALICE, channel: 'voice', scope: 'login' }));

      expect(error).toMatchObject({ kind: 'rate_limited', retryAfterSeconds: 30 });
    });

    it.each<[FakeBandwidthMode, VerifyOutcome | ProviderErrorKind]>([
      [400, 'invalid_number'],
      [401, 'auth'],
      [403, 'auth'],
      [429, 'locked'],
      [500, 'unavailable'],
      ['garbage', 'unavailable'],
      ['unexpected', 'unavailable'],
    ])('a verify answered with %s gives %s, never valid', async (mode, expected) => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);
      fake.failNext(mode);

      const outcome = await outcomeOrErrorKind(
        bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 }),
      );

      expect(outcome).toBe(expected);
    });

    it('treats wrong credentials as an auth failure', async () => {
      const error = await providerError(
        provider({ password: 'wrong' }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );

      expect(lastRequest().status).toBe(401);
      expect(error.kind).toBe('auth');
    });

    it('treats another account id as an auth failure', async () => {
      const error = await providerError(
        provider({ accountId: '9900002' }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );

      expect(lastRequest().status).toBe(403);
      expect(error.kind).toBe('auth');
    });

    it.each(['send', 'verify'] as const)(
      'gives up on a hung %s within timeoutMs, as unavailable',
      async (action) => {
        const { handle } = await challenge(provider());
        fake.setMode('hang');
        const bandwidth = provider({}, 300);

        const error = await expectUnavailableWithin(1_000, () =>
          action === 'send'
            ? bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' })
            : bandwidth.verify({ to: ALICE, scope: 'login', code: '123456', handle, maxAgeMinutes: 5 }),
        );
        expect(lastRequest().status).toBeUndefined();
        // The request reached Bandwidth and no answer came: a code may have been sent.
        expect(error.delivered).toBe('maybe');
      },
    );

    it('treats a refused connection as unavailable', async () => {
      const origin = await refusedOrigin();

      const error = await providerError(
        provider({ baseUrl: `${origin}/api/v1` }).send({
          to: ALICE,
          channel: 'sms',
          scope: 'login',
        }),
      );

      expect(error.kind).toBe('unavailable');
      expect(error.delivered).toBe('no');
    });

    it('keeps credentials, codes and phone numbers out of error messages', async () => {
      const bandwidth = provider();
      const { handle, code } = await challenge(bandwidth);
      const errors: ProviderError[] = [];
      for (const mode of [400, 401, 500, 'garbage'] as const) {
        fake.failNext(mode);
        errors.push(
          await providerError(
            bandwidth.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 }),
          ),
        );
        fake.failNext(mode);
        errors.push(await providerError(bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' })));
      }
      fake.setMode('hang');
      errors.push(await providerError(provider({}, 200).send({ to: ALICE, channel: 'sms', scope: 'login' })));

      expectErrorsRevealNone(errors, [PASSWORD, '2025550142', code]);
    });
  });
});
