import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SignalWireConfig } from '../../../src/mfa/providers/config.js';
import type { CodeStore } from '../../../src/mfa/code-store.js';
import type { MfaProvider, ProviderError, ProviderErrorKind } from '../../../src/mfa/provider.js';
import { composeVoiceDocument, createSignalWireProvider } from '../../../src/mfa/providers/signalwire.js';
import { createSqlCodeStore } from '../../../src/stores/sql/code-store.js';
import { openSqlDatabase, type SqlDatabase } from '../../../src/stores/sql/database.js';
import { TEST_CODE_TEXTS } from '../../helpers/fraud.js';
import {
  SIGNALWIRE_VOICE_PATH,
  createSignalWireVoiceRouter,
  createMemoryVoiceDocumentStore,
  type VoiceDocumentStore,
} from '../../../src/mfa/providers/signalwire-voice-route.js';
import type { RedisClient } from '../../../src/stores/redis/client.js';
import { createRedisVoiceDocumentStore } from '../../../src/stores/redis/voice-document-store.js';
import { startFakeSignalWire } from '../../fakes/signalwire-server.js';
import type { FailureMode, FakeSignalWire } from '../../fakes/signalwire-server.js';
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
  providerError,
  smsLoginChallenge,
} from '../../helpers/provider-unit.js';

// Fictional numbers only (+1 202 555 0100-0199).
const ALICE = '+12025550142';
const FROM = '+12025550100';
const PROJECT = 'a1b2c3d4-0000-4000-8000-000000000001';
const TOKEN = 'PTfake-token-not-a-secret';
const CALLBACK_BASE = 'https://site.example.test';

let fake: FakeSignalWire;
let database: SqlDatabase;
let clock: TestClock;
let codes: CodeStore;
let documents: VoiceDocumentStore;

beforeEach(async () => {
  fake = await startFakeSignalWire({ projectId: PROJECT, token: TOKEN, fromNumber: FROM });
  database = await openSqlDatabase({ sqlitePath: ':memory:' });
  clock = createTestClock();
  codes = createSqlCodeStore(database, clock, 'test-key');
  documents = createMemoryVoiceDocumentStore(clock);
});

afterEach(async () => {
  await database.close();
  await fake.close();
});

function provider(overrides: Partial<SignalWireConfig> = {}, timeoutMs = 2_000) {
  return createSignalWireProvider({
    config: {
      projectId: PROJECT,
      token: TOKEN,
      fromNumber: FROM,
      baseUrl: fake.baseUrl,
      callbackBaseUrl: CALLBACK_BASE,
      ...overrides,
    },
    codes,
    voiceDocuments: documents,
    codeDigits: 6,
    codeTtlMinutes: 5,
    texts: TEST_CODE_TEXTS,
    timeoutMs,
  });
}

const lastRequest = () => fake.requests.at(-1)!;
const challenge = (sender: MfaProvider) => smsLoginChallenge(sender, fake, ALICE);
/** What SignalWire would do with the Url: fetch it from the site. */
const documentApp = () => express().use(createSignalWireVoiceRouter(documents));

describe('SignalWire provider', () => {
  it('is named signalwire and offers sms and voice', () => {
    expect(provider().name).toBe('signalwire');
    expect(provider().channels).toEqual(['sms', 'voice']);
  });

  describe('SMS', () => {
    it('sends a code the site made through the Messages API, with Basic project:token', async () => {
      const { handle } = await provider().send({ to: ALICE, channel: 'sms', scope: 'login' });

      expect(lastRequest()).toMatchObject({
        method: 'POST',
        path: `/api/laml/2010-04-01/Accounts/${PROJECT}/Messages`,
        auth: 'basic',
        status: 201,
        body: {
          To: ALICE,
          From: FROM,
          Body: expect.stringMatching(/^Keyhole code: (\d{6})\n\n@keyhole\.example #\1$/),
        },
      });
      expect(handle).toBeTruthy();
    });

    it('checks codes in the site: right code valid once, wrong code invalid, other scope invalid', async () => {
      const signalwire = provider();
      const { handle, code } = await challenge(signalwire);

      expect(await signalwire.verify({ to: ALICE, scope: 'admin', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
      expect(
        await signalwire.verify({
          to: ALICE,
          scope: 'login',
          code: wrongFor(code),
          handle,
          maxAgeMinutes: 5,
        }),
      ).toBe('invalid');
      expect(await signalwire.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'valid',
      );
      expect(await signalwire.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
    });

    it('lets a code expire with the site clock', async () => {
      const signalwire = provider();
      const { handle, code } = await challenge(signalwire);
      clock.advanceMinutes(5);

      expect(await signalwire.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'expired',
      );
    });

    it('voids a cancelled code', async () => {
      const signalwire = provider();
      const { handle, code } = await challenge(signalwire);
      await signalwire.cancel!({ to: ALICE, scope: 'login', handle });

      expect(await signalwire.verify({ to: ALICE, scope: 'login', code, handle, maxAgeMinutes: 5 })).toBe(
        'invalid',
      );
    });
  });

  describe('voice', () => {
    it('places a call with the spoken document inline, and a one-time Url without the code as fallback', async () => {
      await provider().send({ to: ALICE, channel: 'voice', scope: 'admin' });
      const call = fake.calls()[0]!;
      const code = fake.lastCodeFor(ALICE)!;

      expect(lastRequest()).toMatchObject({
        path: `/api/laml/2010-04-01/Accounts/${PROJECT}/Calls`,
        status: 200,
      });
      expect(call).toMatchObject({ to: ALICE, from: FROM, method: 'POST' });
      expect(call.twiml).toBe(composeVoiceDocument('Your Keyhole admin code is', code));
      expect(call.url).toMatch(new RegExp(`^${CALLBACK_BASE}${SIGNALWIRE_VOICE_PATH}/[A-Za-z0-9_-]{43}$`));
      expect(call.url).not.toContain(code);
    });

    it('reads the digits one at a time, twice, with pauses, in escaped XML', () => {
      const xml = composeVoiceDocument('Your Keyhole code is', '481592');

      expect(xml).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?><Response>/);
      expect(xml.match(/4, 8, 1, 5, 9, 2/g)).toHaveLength(2);
      expect(xml.match(/<Pause length="\d"\/>/g)!.length).toBeGreaterThanOrEqual(2);
      expect(composeVoiceDocument('Your Keyhole code is', '<&>')).toContain('&lt;, &amp;, &gt;');
    });

    it('serves the document at the Url once, then never again', async () => {
      await provider().send({ to: ALICE, channel: 'voice', scope: 'login' });
      const call = fake.calls()[0]!;
      const path = new URL(call.url!).pathname;

      const first = await request(documentApp()).post(path).type('form').send({ CallSid: call.sid });
      expect(first.status).toBe(200);
      expect(first.headers['content-type']).toMatch(/xml/);
      expect(first.headers['cache-control']).toBe('no-store');
      expect(first.text).toBe(call.twiml);

      const second = await request(documentApp()).post(path);
      expect(second.status).toBe(404);
      expect(second.text).not.toContain(fake.lastCodeFor(ALICE)!);
    });

    it('does not serve a document after its code expired, nor after the code was cancelled', async () => {
      const signalwire = provider();
      const expiring = await signalwire.send({ to: ALICE, channel: 'voice', scope: 'login' });
      const expiredPath = new URL(fake.calls()[0]!.url!).pathname;
      clock.advanceMinutes(5);
      expect((await request(documentApp()).post(expiredPath)).status).toBe(404);
      expect(expiring.handle).toBeTruthy();

      const cancelled = await signalwire.send({ to: ALICE, channel: 'voice', scope: 'login' });
      await signalwire.cancel!({ to: ALICE, scope: 'login', handle: cancelled.handle });
      expect((await request(documentApp()).post(new URL(fake.calls()[1]!.url!).pathname)).status).toBe(404);
    });

    describe.skipIf(!isRedisAvailable())('with the documents in Redis, shared by several instances', () => {
      let instances: RedisClient[];
      let keyPrefix: string;
      beforeEach(async () => {
        instances = await Promise.all([connectTestRedis(), connectTestRedis()]);
        keyPrefix = randomKeyPrefix();
        documents = createRedisVoiceDocumentStore(instances[0]!, { keyPrefix, clock });
      });
      afterEach(async () => {
        await deleteKeysWithPrefix(instances[0]!, keyPrefix);
        for (const client of instances) client.destroy();
      });
      /** The other instance, where the load balancer sends SignalWire's fetch. */
      const otherInstance = () =>
        express().use(
          createSignalWireVoiceRouter(createRedisVoiceDocumentStore(instances[1]!, { keyPrefix, clock })),
        );

      it('serves the document of a call one instance placed once, from another, then from none', async () => {
        await provider().send({ to: ALICE, channel: 'voice', scope: 'login' });
        const call = fake.calls()[0]!;
        const path = new URL(call.url!).pathname;

        const first = await request(otherInstance()).post(path);
        expect(first.status).toBe(200);
        expect(first.text).toBe(call.twiml);
        expect((await request(otherInstance()).post(path)).status).toBe(404);
        expect((await request(documentApp()).post(path)).status).toBe(404);
      });

      it('serves nothing, anywhere, once the code was cancelled', async () => {
        const signalwire = provider();
        const sent = await signalwire.send({ to: ALICE, channel: 'voice', scope: 'login' });
        await signalwire.cancel!({ to: ALICE, scope: 'login', handle: sent.handle });

        expect((await request(otherInstance()).post(new URL(fake.calls()[0]!.url!).pathname)).status).toBe(
          404,
        );
      });
    });

    it('answers 404 to ids that were never handed out', async () => {
      expect((await request(documentApp()).post(`${SIGNALWIRE_VOICE_PATH}/${'A'.repeat(43)}`)).status).toBe(
        404,
      );
      expect((await request(documentApp()).get(`${SIGNALWIRE_VOICE_PATH}/short`)).status).toBe(404);
    });
  });

  describe('failures', () => {
    it.each<[FailureMode, ProviderErrorKind]>([
      [400, 'invalid_number'],
      [401, 'auth'],
      [403, 'auth'],
      [429, 'rate_limited'],
      [500, 'unavailable'],
      [503, 'unavailable'],
      ['garbage', 'unavailable'],
    ])('a send answered with %s raises a %s ProviderError', async (mode, kind) => {
      fake.failNext(mode);
      const error = await providerError(provider().send({ to: ALICE, channel: 'voice', scope: 'login' }));

      expect(error).toMatchObject({ kind, provider: 'signalwire' });
    });

    it('reads both error shapes: a bad To on a call (errors[]) and on a message ({code})', async () => {
      const call = await providerError(provider().send({ to: '+1', channel: 'voice', scope: 'login' }));
      const message = await providerError(provider().send({ to: '+1', channel: 'sms', scope: 'login' }));

      expect(call).toMatchObject({ kind: 'invalid_number', message: expect.stringContaining('21211') });
      expect(message).toMatchObject({ kind: 'invalid_number', message: expect.stringContaining('21211') });
    });

    it('treats wrong credentials and a From the project does not own as configuration (auth) errors', async () => {
      const wrongToken = await providerError(
        provider({ token: 'wrong' }).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );
      const wrongFrom = await providerError(
        provider({ fromNumber: '+12025550199' }).send({ to: ALICE, channel: 'voice', scope: 'login' }),
      );

      expect(wrongToken.kind).toBe('auth');
      expect(wrongFrom).toMatchObject({ kind: 'auth', message: expect.stringContaining('21210') });
    });

    it('voids the code and its document when the send failed, so an undelivered code never works', async () => {
      const signalwire = provider();
      fake.failNext(500);
      await providerError(signalwire.send({ to: ALICE, channel: 'voice', scope: 'login' }));
      const failed = fake.requests[0]!.body as { Twiml: string; Url: string };
      const code = /(\d(?:, \d){5})/.exec(failed.Twiml)![1]!.replace(/, /g, '');

      expect((await request(documentApp()).post(new URL(failed.Url).pathname)).status).toBe(404);
      const row = await database.db.selectFrom('issued_codes').select('voided_at').executeTakeFirstOrThrow();
      expect(row.voided_at).not.toBeNull();
      expect(code).toMatch(/^\d{6}$/);
    });

    it('gives up on a hung send within timeoutMs, as unavailable', async () => {
      fake.setMode('hang');

      await expectUnavailableWithin(1_000, () =>
        provider({}, 300).send({ to: ALICE, channel: 'sms', scope: 'login' }),
      );
    });

    it('keeps credentials, codes and phone numbers out of error messages', async () => {
      const errors: ProviderError[] = [];
      for (const mode of [400, 401, 429, 500, 'garbage'] as const) {
        fake.failNext(mode);
        errors.push(await providerError(provider().send({ to: ALICE, channel: 'sms', scope: 'login' })));
      }
      const codesSent = fake.requests.map(
        (logged) => (logged.body as { Body: string }).Body.match(/\d{6}/)![0],
      );

      expectErrorsRevealNone(errors, [TOKEN, '2025550142', ...codesSent]);
    });
  });
});
