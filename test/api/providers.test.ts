import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/mfa/provider.js';
import { startFakeBandwidth } from '../fakes/bandwidth-server.js';
import { startFakeKandy } from '../fakes/kandy-server.js';
import { startFakeSignalWire } from '../fakes/signalwire-server.js';
import { startFakeTwilio } from '../fakes/twilio-verify-server.js';
import { createApiClient, createTestApiKey, expectApiProblem, type ApiClient } from '../helpers/api.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { wrongFor } from '../helpers/flows.js';
import { startProviderSite } from '../helpers/provider-site.js';

const ALICE = '+12025550100';
const LABEL = 'pay.now-2';

/** A provider's fake, the site's settings for it, and where a code it delivered can be read. */
interface ProviderSetup {
  name: string;
  channels: Channel[];
  start(): Promise<{
    env: Record<string, string>;
    /** The newest code the fake delivered to the number (as the person reads or hears it). */
    codeTo(to: string): string;
    /** Every message text the fake was given to deliver, where it is given one. */
    texts(): string[];
    /** How many checks the fake was asked for. */
    checks(): number;
    setClock(now: () => Date): void;
    close(): Promise<void>;
  }>;
}

const TWILIO = {
  accountSid: `AC${'e'.repeat(32)}`,
  authToken: 'twilio-token-for-api-tests',
  serviceSid: `VA${'f'.repeat(32)}`,
};
const KANDY = { clientId: 'PRIV-api-tests', clientSecret: 'kandy-secret-for-api-tests' };
const BANDWIDTH = { accountId: '9900002', username: 'api-user', password: 'api-password' };
const SIGNALWIRE = {
  projectId: 'b2c3d4e5-0000-4000-8000-000000000013',
  token: 'PT-api-tests',
  fromNumber: '+12025550199',
};

const SETUPS: ProviderSetup[] = [
  {
    name: 'bandwidth',
    channels: ['sms', 'voice'],
    async start() {
      const fake = await startFakeBandwidth(BANDWIDTH);
      return {
        env: {
          BW_ACCOUNT_ID: BANDWIDTH.accountId,
          BW_USERNAME: BANDWIDTH.username,
          BW_PASSWORD: BANDWIDTH.password,
          BW_MESSAGING_APPLICATION_ID: 'msg-app-1',
          BW_VOICE_APPLICATION_ID: 'voice-app-1',
          BW_NUMBER: '+12025550199',
          BW_MFA_BASE_URL: fake.baseUrl,
        },
        // Each verification has a Bandwidth scope of its own, "api-" and random characters.
        codeTo: (to) => fake.lastCodeFor(to, 'api')!,
        texts: () => [],
        checks: () => fake.requests.filter((logged) => logged.path.endsWith('/verify')).length,
        setClock: fake.setClock,
        close: fake.close,
      };
    },
  },
  {
    name: 'twilio',
    channels: ['sms', 'voice'],
    async start() {
      const fake = await startFakeTwilio(TWILIO);
      return {
        env: {
          TWILIO_ACCOUNT_SID: TWILIO.accountSid,
          TWILIO_AUTH_TOKEN: TWILIO.authToken,
          TWILIO_VERIFY_SERVICE_ID: TWILIO.serviceSid,
          TWILIO_VERIFY_BASE_URL: fake.baseUrl,
        },
        codeTo: (to) => fake.lastCodeFor(to)!,
        texts: () => [],
        checks: () => fake.requests.filter((logged) => logged.path.endsWith('/VerificationCheck')).length,
        setClock: fake.setClock,
        close: fake.close,
      };
    },
  },
  {
    name: 'signalwire',
    channels: ['sms', 'voice'],
    async start() {
      const fake = await startFakeSignalWire(SIGNALWIRE);
      return {
        env: {
          SIGNALWIRE_SPACE: 'example',
          SIGNALWIRE_PROJECT: SIGNALWIRE.projectId,
          SIGNALWIRE_TOKEN: SIGNALWIRE.token,
          SIGNALWIRE_NUMBER: SIGNALWIRE.fromNumber,
          SIGNALWIRE_BASE_URL: fake.baseUrl,
          BASE_CALLBACK_URL: 'https://keyhole.example.test',
        },
        codeTo: (to) => fake.lastCodeFor(to)!,
        texts: () => [
          ...fake.messages().map((message) => message.body),
          ...fake.calls().map((call) => call.twiml ?? ''),
        ],
        // The site checks SignalWire's codes itself.
        checks: () => 0,
        setClock: () => undefined,
        close: fake.close,
      };
    },
  },
  {
    name: 'kandy',
    channels: ['sms'],
    async start() {
      const fake = await startFakeKandy(KANDY);
      return {
        env: {
          KANDY_BASE_URL: fake.baseUrl,
          KANDY_CLIENT_ID: KANDY.clientId,
          KANDY_CLIENT_SECRET: KANDY.clientSecret,
        },
        codeTo: (to) => fake.lastCodeFor(to)!,
        texts: () => fake.sentCodes().map((sent) => sent.message),
        checks: () => fake.requests.filter((logged) => logged.path.endsWith('/verify')).length,
        setClock: fake.setClock,
        close: fake.close,
      };
    },
  },
];

describe.each(SETUPS)('the verification API with MFA_PROVIDER=$name', (setup) => {
  let fake: Awaited<ReturnType<ProviderSetup['start']>>;
  let site: TestApp;
  let api: ApiClient;
  beforeEach(async () => {
    fake = await setup.start();
    ({ site } = await startProviderSite(setup.name, fake.env));
    fake.setClock(() => site.clock.now());
    api = createApiClient(site.app, (await createTestApiKey(site)).key);
  });
  afterEach(async () => {
    await site.close();
    await fake.close();
  });

  it.each(setup.channels)(
    'sends a code by %s and approves it, after a wrong one, through the provider',
    async (channel) => {
      const sent = await api.send({ to: ALICE, channel, label: LABEL });
      expect(sent.status, sent.text).toBe(201);
      expect(sent.body).toMatchObject({ channel, label: LABEL, status: 'pending' });
      const code = fake.codeTo(ALICE);
      expect(code).toMatch(/^\d{6}$/);

      const wrong = await api.check(sent.body.id, wrongFor(code));
      expect(wrong.body).toMatchObject({ status: 'pending', attemptsLeft: 4 });
      const right = await api.check(sent.body.id, code);
      expect(right.body).toMatchObject({ status: 'approved' });
      expect(fake.checks()).toBe(setup.name === 'signalwire' ? 0 : 2);
      // Whatever the provider is given to say, the caller's label is not in it.
      for (const text of fake.texts()) expect(text).not.toContain(LABEL);
    },
  );

  if (!setup.channels.includes('voice')) {
    it('answers 503 to a voice code, which no provider here delivers', async () => {
      expectApiProblem(await api.send({ to: ALICE, channel: 'voice' }), 503, 'unavailable');
    });
  }
});

describe('the verification API with MFA_PROVIDER=twilio,kandy: failover', () => {
  it('sends through the next provider while the first is down, and checks with the one that sent it', async () => {
    const twilio = await startFakeTwilio(TWILIO);
    const kandy = await startFakeKandy(KANDY);
    const site = await createTestApp({
      env: {
        MFA_PROVIDER: 'twilio,kandy',
        TWILIO_ACCOUNT_SID: TWILIO.accountSid,
        TWILIO_AUTH_TOKEN: TWILIO.authToken,
        TWILIO_VERIFY_SERVICE_ID: TWILIO.serviceSid,
        TWILIO_VERIFY_BASE_URL: twilio.baseUrl,
        KANDY_BASE_URL: kandy.baseUrl,
        KANDY_CLIENT_ID: KANDY.clientId,
        KANDY_CLIENT_SECRET: KANDY.clientSecret,
      },
      providerTimeoutMs: 300,
    });
    try {
      kandy.setClock(() => site.clock.now());
      const api = createApiClient(site.app, (await createTestApiKey(site)).key);
      twilio.setMode(500);
      const sent = await api.send({ to: ALICE });
      expect(sent.status, sent.text).toBe(201);
      expect(kandy.lastCodeFor(ALICE)).toBeDefined();

      twilio.setMode('ok');
      const approved = await api.check(sent.body.id, kandy.lastCodeFor(ALICE)!);
      expect(approved.body.status).toBe('approved');
      expect(twilio.requests.filter((logged) => logged.path.endsWith('/VerificationCheck'))).toEqual([]);
    } finally {
      await site.close();
      await Promise.all([twilio.close(), kandy.close()]);
    }
  });
});
