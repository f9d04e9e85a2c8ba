import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BandwidthConfig } from '../../../src/config.js';
import { ProviderError } from '../../../src/mfa/provider.js';
import type { ProviderErrorKind, VerifyOutcome } from '../../../src/mfa/provider.js';
import { createBandwidthProvider } from '../../../src/mfa/providers/bandwidth.js';
import { startFakeBandwidth } from '../../fakes/bandwidth-server.js';
import type { FakeBandwidth, FakeBandwidthMode } from '../../fakes/bandwidth-server.js';

// Fictional numbers only (+1 202 555 0100-0199).
const ALICE = '+12025550142';
const BOB = '+12025550143';
const FROM = '+12025550100';
const ACCOUNT = '9900001';
const USERNAME = 'mfa-user';
const PASSWORD = 'fake-password-not-a-secret';
const MESSAGING_APP = 'messaging-app-0001';
const VOICE_APP = 'voice-app-0001';

let fake: FakeBandwidth;
let clock: Date;

beforeEach(async () => {
  clock = new Date('2026-11-02T10:00:00Z');
  fake = await startFakeBandwidth({
    accountId: ACCOUNT,
    username: USERNAME,
    password: PASSWORD,
    messagingApplicationId: MESSAGING_APP,
    voiceApplicationId: VOICE_APP,
    now: () => clock,
  });
});

afterEach(async () => {
  await fake.close();
});

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
  return createBandwidthProvider({ config: configFor(overrides), codeDigits: 6, timeoutMs });
}

function advanceMinutes(minutes: number) {
  clock = new Date(clock.getTime() + minutes * 60_000);
}

async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => expect.fail('expected a ProviderError'),
    (rejection: unknown) => rejection,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

const lastRequest = () => fake.requests.at(-1)!;

describe('Bandwidth MFA provider', () => {
  it('is named bandwidth and offers sms and voice', () => {
    const bandwidth = provider();
    expect(bandwidth.name).toBe('bandwidth');
    expect(bandwidth.channels).toEqual(['sms', 'voice']);
  });

  describe('sending', () => {
    it('sends an SMS code through /code/messaging with the messaging application, and returns the messageId', async () => {
      const result = await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });

      expect(lastRequest()).toMatchObject({
        method: 'POST',
        path: `/api/v1/accounts/${ACCOUNT}/code/messaging`,
        auth: 'basic',
        status: 200,
        body: { to: ALICE, from: FROM, applicationId: MESSAGING_APP, scope: 'login', digits: 6 },
      });
      expect(result.handle).toHaveLength(29);
      expect(fake.sentCodes()).toEqual([
        { to: ALICE, scope: 'login', channel: 'sms', code: expect.stringMatching(/^\d{6}$/), at: clock },
      ]);
    });

    it('places a voice code through /code/voice with the voice application, and returns the callId', async () => {
      const result = await provider().send({ to: ALICE, channel: 'voice', scope: 'admin' });

      expect(lastRequest()).toMatchObject({
        path: `/api/v1/accounts/${ACCOUNT}/code/voice`,
        status: 200,
        body: { to: ALICE, from: FROM, applicationId: VOICE_APP, scope: 'admin', digits: 6 },
      });
      expect(result.handle).toHaveLength(47);
      expect(fake.sentCodes()[0]).toMatchObject({ channel: 'voice', scope: 'admin' });
    });

    it('sends a message template with {CODE} and {SCOPE} for Bandwidth to fill in, never a code of its own', async () => {
      await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });
      await provider().send({ to: ALICE, channel: 'voice', scope: 'login' });

      for (const request of fake.requests) {
        const { message } = request.body as { message: string };
        expect(message).toContain('{CODE}');
        expect(message).toContain('{SCOPE}');
        expect(message).not.toMatch(/\d/);
      }
    });

    it('sends bodies that pass the OpenAPI schema shipped in bandwidth-sdk (the fake answers 400 otherwise)', async () => {
      await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;
      await provider().verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 });

      expect(fake.requests.map((request) => request.status)).toEqual([200, 200]);
    });

    it('is checked by a fake that really rejects bodies outside the schema', async () => {
      const outOfRange = createBandwidthProvider({ config: configFor(), codeDigits: 9 });
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
    it('reports a correct code as valid and a wrong one as invalid', async () => {
      const bandwidth = provider();
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;
      const wrong = code === '000000' ? '111111' : '000000';

      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code: wrong, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 })).toBe('valid');
      expect(lastRequest().body).toEqual({ to: ALICE, scope: 'login', code, expirationTimeInMinutes: 5 });
    });

    it('keeps scopes apart: a login code does not verify in admin scope, nor for another number', async () => {
      const bandwidth = provider();
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;

      expect(await bandwidth.verify({ to: ALICE, scope: 'admin', code, maxAgeMinutes: 5 })).toBe('invalid');
      expect(await bandwidth.verify({ to: BOB, scope: 'login', code, maxAgeMinutes: 5 })).toBe('invalid');
      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 })).toBe('valid');
    });

    it('lets the app choose the window: maxAgeMinutes is sent as expirationTimeInMinutes', async () => {
      const bandwidth = provider();
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;
      advanceMinutes(6);

      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 })).toBe('invalid');
      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 10 })).toBe('valid');
    });

    it.each([
      [0, 1],
      [1, 1],
      [5.9, 5],
      [15, 15],
      [60, 15],
      [Number.NaN, 1],
    ])('clamps a window of %s minutes to %s (Bandwidth accepts 1 to 15)', async (maxAgeMinutes, sent) => {
      await provider().verify({ to: ALICE, scope: 'login', code: '123456', maxAgeMinutes });

      expect(lastRequest()).toMatchObject({ status: 200, body: { expirationTimeInMinutes: sent } });
    });

    it('does not make codes single use (the fake, like the worst case, accepts a code twice), so the service must', async () => {
      const bandwidth = provider();
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'admin' });
      const code = fake.lastCodeFor(ALICE, 'admin')!;

      expect(await bandwidth.verify({ to: ALICE, scope: 'admin', code, maxAgeMinutes: 5 })).toBe('valid');
      expect(await bandwidth.verify({ to: ALICE, scope: 'admin', code, maxAgeMinutes: 5 })).toBe('valid');
    });

    it("reports 'locked' once Bandwidth refuses more attempts with 429, even for the right code", async () => {
      const bandwidth = provider();
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;
      const wrong = code === '000000' ? '111111' : '000000';
      for (let attempt = 0; attempt < 5; attempt++) {
        expect(await bandwidth.verify({ to: ALICE, scope: 'login', code: wrong, maxAgeMinutes: 5 })).toBe(
          'invalid',
        );
      }

      expect(await bandwidth.verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 })).toBe('locked');
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
      ['unexpected', 'unavailable'],
    ])('a send answered with %s raises a %s ProviderError', async (mode, kind) => {
      fake.failNext(mode);
      const error = await providerError(provider().send({ to: ALICE, channel: 'sms', scope: 'login' }));

      expect(error.kind).toBe(kind);
      expect(error.provider).toBe('bandwidth');
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
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;
      fake.failNext(mode);

      const outcome = await bandwidth
        .verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 })
        .catch((error: unknown) => (error instanceof ProviderError ? error.kind : error));

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
        fake.setMode('hang');
        const bandwidth = provider({}, 300);
        const started = performance.now();

        const error = await providerError(
          action === 'send'
            ? bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' })
            : bandwidth.verify({ to: ALICE, scope: 'login', code: '123456', maxAgeMinutes: 5 }),
        );

        expect(error.kind).toBe('unavailable');
        expect(performance.now() - started).toBeLessThan(1_000);
        expect(lastRequest().status).toBeUndefined();
      },
    );

    it('treats a refused connection as unavailable', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise<void>((resolve) => closed.close(() => resolve()));

      const error = await providerError(
        provider({ baseUrl: `http://127.0.0.1:${port}/api/v1` }).send({
          to: ALICE,
          channel: 'sms',
          scope: 'login',
        }),
      );

      expect(error.kind).toBe('unavailable');
    });

    it('keeps credentials, codes and phone numbers out of error messages', async () => {
      const bandwidth = provider();
      await bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const code = fake.lastCodeFor(ALICE, 'login')!;
      const errors: ProviderError[] = [];
      for (const mode of [400, 401, 500, 'garbage'] as const) {
        fake.failNext(mode);
        errors.push(
          await providerError(bandwidth.verify({ to: ALICE, scope: 'login', code, maxAgeMinutes: 5 })),
        );
        fake.failNext(mode);
        errors.push(await providerError(bandwidth.send({ to: ALICE, channel: 'sms', scope: 'login' })));
      }
      fake.setMode('hang');
      errors.push(await providerError(provider({}, 200).send({ to: ALICE, channel: 'sms', scope: 'login' })));

      for (const error of errors) {
        const text = `${error.message} ${error.stack} ${JSON.stringify(error)} ${String(error.cause ?? '')}`;
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain('2025550142');
        expect(text).not.toContain(code);
        expect(error.cause).toBeUndefined();
      }
    });
  });
});
