import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KandyConfig } from '../../../src/mfa/providers/config.js';
import type { MfaProvider, ProviderError, ProviderErrorKind } from '../../../src/mfa/provider.js';
import { createKandyProvider } from '../../../src/mfa/providers/kandy.js';
import { TEST_CODE_TEXTS } from '../../helpers/fraud.js';
import { startFakeKandy } from '../../fakes/kandy-server.js';
import type { FailureMode, FakeKandy } from '../../fakes/kandy-server.js';
import { createTestClock, type TestClock } from '../../helpers/clock.js';
import { wrongFor } from '../../helpers/flows.js';
import {
  expectErrorsRevealNone,
  expectUnavailableWithin,
  outcomeOrErrorKind,
  PROVIDER_TEST_START,
  providerError,
  smsLoginChallenge,
} from '../../helpers/provider-unit.js';

// Fictional numbers only (+1 202 555 0100-0199).
const ALICE = '+12025550142';
const CLIENT_ID = 'PRIV-fake-project';
const CLIENT_SECRET = 'fake-client-secret-not-a-secret';
const TOKEN_LIFETIME_SECONDS = 3600;

let fake: FakeKandy;
let clock: TestClock;

beforeEach(async () => {
  clock = createTestClock(PROVIDER_TEST_START);
  fake = await startFakeKandy({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS,
    now: clock.now,
  });
});

afterEach(() => fake.close());

function provider(overrides: Partial<KandyConfig> = {}, timeoutMs = 2_000) {
  return createKandyProvider({
    config: { baseUrl: fake.baseUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...overrides },
    codeDigits: 6,
    codeTtlMinutes: 5,
    timeoutMs,
    now: () => clock.now().getTime(),
    texts: TEST_CODE_TEXTS,
  });
}

const lastRequest = () => fake.requests.at(-1)!;
const challenge = (sender: MfaProvider) => smsLoginChallenge(sender, fake, ALICE);

describe('Kandy provider', () => {
  it('is named kandy and offers SMS only (Kandy has no voice method)', () => {
    expect(provider().name).toBe('kandy');
    expect(provider().channels).toEqual(['sms']);
  });

  describe('token', () => {
    it('gets a token with client credentials and uses the id token preferred_username as the user id', async () => {
      await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });

      expect(fake.requests[0]).toMatchObject({
        method: 'POST',
        path: '/cpaas/auth/v1/token',
        auth: 'none',
        body: {
          grant_type: 'client_credentials',
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          scope: 'openid',
        },
      });
      expect(fake.requests[1]).toMatchObject({ path: `/cpaas/auth/v1/${fake.userId}/codes`, auth: 'bearer' });
    });

    it('reuses the token until half its lifetime has passed, then refreshes it', async () => {
      const kandy = provider();
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      clock.advanceMinutes(29);
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      expect(fake.tokensIssued()).toBe(1);

      clock.advanceMinutes(2);
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      expect(fake.tokensIssued()).toBe(2);
    });

    it('fetches one token for requests that arrive together', async () => {
      const kandy = provider();
      await Promise.all([1, 2, 3].map(() => kandy.send({ to: ALICE, channel: 'sms', scope: 'login' })));

      expect(fake.tokensIssued()).toBe(1);
    });

    it('gets a new token once when Kandy revokes the current one early', async () => {
      const kandy = provider();
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      fake.revokeTokens();

      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      expect(fake.tokensIssued()).toBe(2);
      expect(lastRequest().status).toBe(201);
    });

    it('treats refused client credentials as an auth failure', async () => {
      const error = await providerError(
        provider({ clientSecret: 'wrong' }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );

      expect(error).toMatchObject({ kind: 'auth', message: expect.stringContaining('invalid_client') });
    });
  });

  describe('sending and verifying', () => {
    it('sends an SMS code with {code} for Kandy to fill in, and keeps the codeId as the handle', async () => {
      const { handle } = await provider().send({ to: ALICE, channel: 'sms', scope: 'admin' });

      expect(lastRequest()).toMatchObject({
        status: 201,
        body: {
          code: {
            address: [ALICE],
            method: 'sms',
            format: { length: 6, type: 'numeric' },
            expiry: 300,
            message: 'Keyhole admin code (do not share it):\n\n@keyhole.example #{code}',
          },
        },
      });
      expect(handle).toBe(fake.sentCodes()[0]!.codeId);
    });

    it('refuses to place a voice call', async () => {
      const error = await providerError(provider().send({ to: ALICE, channel: 'voice', scope: 'login' }));

      expect(error.kind).toBe('unavailable');
      expect(fake.requests).toEqual([]);
    });

    it('verifies with the codeId: 204 is valid, anything else invalid; a code works once', async () => {
      const kandy = provider();
      const { handle, code } = await challenge(kandy);

      expect(
        await kandy.verify({ to: ALICE, scope: 'login', code: wrongFor(code), handle, maxAgeMinutes: 5 }),
      ).toBe('invalid');
      expect(await kandy.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe('valid');
      expect(lastRequest()).toMatchObject({
        method: 'PUT',
        path: `/cpaas/auth/v1/${fake.userId}/codes/${handle}/verify`,
        body: { code: { verify: code } },
        status: 204,
      });
      expect(await kandy.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
    });

    it('keeps scopes apart: a login code is checked against the login codeId only', async () => {
      const kandy = provider();
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      const loginCode = fake.lastCodeFor(ALICE)!;
      const admin = await kandy.send({ to: ALICE, channel: 'sms', scope: 'admin' });

      expect(
        await kandy.verify({
          to: ALICE,
          scope: 'admin',
          code: loginCode,
          handle: admin.handle,
          maxAgeMinutes: 5,
        }),
      ).toBe(loginCode === fake.lastCodeFor(ALICE) ? 'valid' : 'invalid');
    });

    it('reports an expired code as invalid (Kandy does not tell them apart)', async () => {
      const kandy = provider();
      const { handle, code } = await challenge(kandy);
      clock.advanceMinutes(5);

      expect(await kandy.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
    });

    it('deletes a code on cancel, and cancelling it again is not an error', async () => {
      const kandy = provider();
      const { handle, code } = await challenge(kandy);
      await kandy.cancel!({ to: ALICE, scope: 'login', handle });
      expect(lastRequest()).toMatchObject({ method: 'DELETE', status: 204 });
      await kandy.cancel!({ to: ALICE, scope: 'login', handle });

      expect(await kandy.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
    });
  });

  describe('failures', () => {
    it.each<[FailureMode, ProviderErrorKind]>([
      [400, 'invalid_number'],
      [403, 'auth'],
      [429, 'rate_limited'],
      [500, 'unavailable'],
      [503, 'unavailable'],
      ['garbage', 'unavailable'],
    ])('a send answered with %s raises a %s ProviderError', async (mode, kind) => {
      const kandy = provider();
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' }); // token in hand
      fake.failNext(mode);
      const error = await providerError(kandy.send({ to: ALICE, channel: 'sms', scope: 'login' }));

      expect(error).toMatchObject({ kind, provider: 'kandy' });
    });

    it('raises unavailable, not a crash, for a resourceURL whose code id is not well escaped', async () => {
      const kandy = provider();
      fake.nameNextCode('%E0%A4%A');
      const error = await providerError(kandy.send({ to: ALICE, channel: 'sms', scope: 'login' }));
      expect(error).toMatchObject({ kind: 'unavailable', provider: 'kandy' });
    });

    it('raises auth when the API keeps answering 401 after a fresh token', async () => {
      const kandy = provider();
      await kandy.send({ to: ALICE, channel: 'sms', scope: 'login' });
      fake.setMode(401);

      const error = await providerError(kandy.send({ to: ALICE, channel: 'sms', scope: 'login' }));
      expect(error.kind).toBe('auth');
    });

    it('rejects a malformed number (SVC0002 on address) as invalid_number', async () => {
      const error = await providerError(
        provider().send({ to: '12025550142', channel: 'sms', scope: 'login' }),
      );

      expect(error).toMatchObject({ kind: 'invalid_number', message: expect.stringContaining('SVC0002') });
    });

    it.each<[FailureMode, string]>([
      [429, 'rate_limited'],
      [500, 'unavailable'],
      ['garbage', 'invalid'],
    ])('a verify answered with %s gives %s, never valid', async (mode, expected) => {
      const kandy = provider();
      const { handle, code } = await challenge(kandy);
      fake.failNext(mode);

      const outcome = await outcomeOrErrorKind(
        kandy.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 }),
      );

      expect(outcome).toBe(expected);
    });

    it('gives up on a hung token fetch or call within timeoutMs, as unavailable', async () => {
      fake.setMode('hang');

      await expectUnavailableWithin(1_000, () =>
        provider({}, 300).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );
    });

    it('keeps credentials, codes and phone numbers out of error messages', async () => {
      const kandy = provider();
      const { handle, code } = await challenge(kandy);
      const errors: ProviderError[] = [];
      for (const mode of [400, 401, 429, 500, 'garbage'] as const) {
        fake.setMode(mode);
        errors.push(await providerError(kandy.send({ to: ALICE, channel: 'sms', scope: 'login' })));
      }
      fake.setMode(500);
      errors.push(
        await providerError(kandy.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })),
      );
      fake.setMode('ok');
      errors.push(
        await providerError(
          provider({ clientSecret: 'wrong' }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
        ),
      );

      expectErrorsRevealNone(errors, [CLIENT_SECRET, '2025550142', code, 'eyJ' /* no token */]);
    });
  });
});
