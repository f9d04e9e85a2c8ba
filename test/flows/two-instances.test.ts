import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SIGNALWIRE_VOICE_PATH } from '../../src/mfa/providers/signalwire-voice-route.js';
import type { RedisClient } from '../../src/stores/redis/client.js';
import { cookieInJar, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import {
  BANDWIDTH_TEST_ENV,
  createTestApp,
  lastConsoleCode,
  type TestApp,
} from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../helpers/redis.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../helpers/services.js';
import { isPostgresAvailable, onTestPostgres, randomSchemaName } from '../helpers/sql.js';
import { startFakeBandwidth, type FakeBandwidth } from '../fakes/bandwidth-server.js';
import { digitsIn, startFakeSignalWire, type FakeSignalWire } from '../fakes/signalwire-server.js';

/**
 * Two instances of the site behind one address, as a load balancer runs them: two apps, each with
 * its own PostgreSQL pool, its own Redis connection and its own HTTP server on its own port,
 * sharing one schema and one Redis key prefix. A person's browser keeps one cookie jar and its
 * requests land on either instance.
 */

interface Instance {
  site: TestApp;
  server: Server;
  url: string;
}

async function listen(site: TestApp): Promise<Instance> {
  const server = site.app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return { site, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stop(instance: Instance): Promise<void> {
  instance.server.closeAllConnections();
  await new Promise<void>((resolve) => instance.server.close(() => resolve()));
  await instance.site.close();
}

/** One browser (one cookie jar) whose requests go to the instance each call names. */
function createBalancedBrowser(instances: () => Instance[]) {
  const agents = new Map<string, ReturnType<typeof request.agent>>();
  let jar: unknown;
  const agentFor = (instance: Instance) => {
    let agent = agents.get(instance.url);
    if (!agent) {
      agent = request.agent(instance.url);
      // superagent keeps cookies in `jar`: sharing it is sharing the browser's cookies.
      const withJar = agent as unknown as { jar: unknown };
      jar ??= withJar.jar;
      withJar.jar = jar;
      agents.set(instance.url, agent);
    }
    return agent;
  };
  const on = (index: number): Browser => {
    const agent = () => agentFor(instances()[index]!);
    return {
      get agent() {
        return agent();
      },
      get: (path) => agent().get(path),
      cookie: (name) => cookieInJar(agent(), name),
      async submit(pagePath, action, fields = {}) {
        const page = await agent().get(pagePath);
        return agent()
          .post(action)
          .type('form')
          .send({ ...fields, _csrf: csrfTokenIn(page.text) });
      },
    };
  };
  return { onA: on(0), onB: on(1) };
}

describe.skipIf(!isPostgresAvailable() || !isRedisAvailable())(
  'two instances on one PostgreSQL and one Redis',
  () => {
    let schema: string;
    let keyPrefix: string;
    let clock: TestClock;
    let redis: RedisClient;
    let a: Instance;
    let b: Instance;
    let extraEnv: Record<string, string>;
    const running: Instance[] = [];

    async function startBoth(
      env: Record<string, string> = extraEnv,
      options: { requestsPerMinute?: number } = {},
    ) {
      const start = async () =>
        listen(
          await createTestApp({
            ...options,
            env: {
              DATABASE_URL: TEST_DATABASE_URL,
              REDIS_URL: TEST_REDIS_URL,
              REDIS_KEY_PREFIX: keyPrefix,
              ...env,
            },
            postgresSchema: schema,
            clock,
            providerTimeoutMs: 1000,
          }),
        );
      a = await start();
      b = await start();
      running.push(a, b);
    }

    async function stopBoth() {
      await Promise.all(running.splice(0).map(stop));
    }

    /** The resend cooldown (30 s, counted by Redis's clock) passes, for both instances. */
    async function passResendCooldowns() {
      clock.advance(30_000);
      await deleteKeysWithPrefix(redis, `${keyPrefix}limit:mfa:cooldown:`);
    }

    const browser = () => createBalancedBrowser(() => [a, b]);

    beforeEach(async () => {
      schema = randomSchemaName();
      keyPrefix = randomKeyPrefix();
      clock = createTestClock();
      extraEnv = {};
      await onTestPostgres((client) => client.query(`CREATE SCHEMA ${schema}`));
      redis = await connectTestRedis();
    });

    afterEach(async () => {
      await stopBoth();
      await deleteKeysWithPrefix(redis, keyPrefix);
      redis.destroy();
      await onTestPostgres((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    });

    describe('with the console provider', () => {
      beforeEach(() => startBoth());

      it('logs in on A, takes the code on B and shows the account on B', async () => {
        const { onA, onB } = browser();
        const account = await register(onA, { username: 'alice' });
        expect(a.site.printed).toEqual([expect.stringContaining(': Keyhole sign-up code: ')]);
        expectRedirect(await submitPassword(onA, account), '/verify');
        expect(a.site.printed).toHaveLength(2);
        expect(a.site.printed[1]).toContain(': Keyhole code: ');
        expect(b.site.printed).toHaveLength(0);

        expectRedirect(await submitCode(onB, lastConsoleCode(a.site.printed)), '/account');
        expectPage(await onB.get('/account'), 200, /alice/);
        expectPage(await onA.get('/account'), 200, /alice/);
      });

      it('keeps one account per username across instances', async () => {
        const { onA, onB } = browser();
        await register(onA, { username: 'Alice' });
        const res = await onB.submit('/register', '/register', {
          username: 'ａｌｉｃｅ',
          password: 'another good passphrase here',
          phone: '+12025550143',
          channel: 'sms',
        });
        expectPage(res, 409, /taken/i);
      });

      it('kills a code after five wrong tries in all, wherever they land', async () => {
        const { onA, onB } = browser();
        const account = await register(onA);
        await submitPassword(onA, account);
        const wrong = wrongFor(lastConsoleCode(a.site.printed));
        for (let i = 0; i < 4; i += 1) {
          expectPage(await submitCode(i % 2 === 0 ? onA : onB, wrong), 400, /not right/);
        }
        expectPage(await submitCode(onB, wrong), 400, /Too many wrong attempts for this code/);
        // The right code is dead too, on either instance.
        expectPage(await submitCode(onA, lastConsoleCode(a.site.printed)), 400);
      });

      it('pauses code entry for the account after 10 wrong codes in all', async () => {
        const { onA, onB } = browser();
        const account = await register(onA);
        await submitPassword(onA, account);
        for (let round = 0; round < 2; round += 1) {
          const printed = [...a.site.printed, ...b.site.printed];
          const wrong = wrongFor(lastConsoleCode(printed));
          for (let i = 0; i < 5; i += 1) await submitCode(i % 2 === 0 ? onA : onB, wrong);
          await passResendCooldowns();
          if (round === 0) expectRedirect(await onB.submit('/verify', '/verify/resend'), '/verify');
        }
        expectPage(await onA.submit('/verify', '/verify/resend'), 429, /Too many wrong codes/);
        expectPage(await onB.submit('/verify', '/verify/resend'), 429, /Too many wrong codes/);
      });

      it('refuses a sixth code in 15 minutes, however the requests were spread', async () => {
        const { onA, onB } = browser();
        const account = await register(onA);
        // The sign-up code (on A) was the first of the five; the login code is the second.
        expect(a.site.printed).toEqual([expect.stringContaining(': Keyhole sign-up code: ')]);
        await submitPassword(onA, account);
        for (let i = 0; i < 3; i += 1) {
          await passResendCooldowns();
          expectRedirect(await (i % 2 === 0 ? onB : onA).submit('/verify', '/verify/resend'), '/verify');
        }
        await passResendCooldowns();
        expectPage(await onA.submit('/verify', '/verify/resend'), 429, /Too many codes requested/);
        expectPage(await onB.submit('/verify', '/verify/resend'), 429, /Too many codes requested/);
        expect(a.site.printed.length + b.site.printed.length).toBe(5);
      });

      it('throttles failed passwords from one client on one username in total', async () => {
        const { onA, onB } = browser();
        const account = await register(onA);
        // register() made the browser forget its cookies, in the one jar both instances use: a
        // client that never completed a login, with no known-device cookie on either instance.
        expect(onA.cookie('mfa.device')).toBeUndefined();
        expect(onB.cookie('mfa.device')).toBeUndefined();
        const wrongPassword = { ...account, password: 'not the password at all' };
        for (let i = 0; i < 10; i += 1) {
          expectPage(await submitPassword(i % 2 === 0 ? onA : onB, wrongPassword), 401);
        }
        expectPage(await submitPassword(onA, wrongPassword), 429);
        expectPage(await submitPassword(onB, account), 429);
      });

      it('lets exactly one of two requests with the same right code through, sent to A and B at once', async () => {
        for (let round = 0; round < 3; round += 1) {
          const { onA, onB } = browser();
          const account = await register(onA);
          const loginsOfAccount = async () =>
            (await a.site.audit.recent()).filter(
              (event) => event.type === 'login_succeeded' && event.username === account.username,
            );
          // The sign-up code signed the person in once; the race below may add exactly one more.
          expect(await loginsOfAccount()).toHaveLength(1);
          await submitPassword(onA, account);
          const code = lastConsoleCode(a.site.printed);
          const page = await onA.get('/verify');
          const post = (on: Browser) =>
            on.agent
              .post('/verify')
              .type('form')
              .send({ code, _csrf: csrfTokenIn(page.text) });
          const results = await Promise.all([post(onA), post(onB)]);
          const through = results.filter(
            (res) => [302, 303].includes(res.status) && res.headers.location === '/account',
          );
          expect(through, `round ${round}: ${results.map((res) => res.status).join(', ')}`).toHaveLength(1);
          expect(await loginsOfAccount()).toHaveLength(2);
        }
      });

      it('keeps sessions and limits when both instances restart', async () => {
        const { onA, onB } = browser();
        const signedIn = await register(onA);
        await submitPassword(onA, signedIn);
        expectRedirect(await submitCode(onB, lastConsoleCode(a.site.printed)), '/account');

        const other = browser();
        const pending = await register(other.onA);
        const wrongPassword = { ...pending, password: 'not the password at all' };
        for (let i = 0; i < 10; i += 1) await submitPassword(other.onB, wrongPassword);

        await stopBoth();
        await startBoth();

        expectPage(await onA.get('/account'), 200);
        expectPage(await onB.get('/account'), 200);
        expectPage(await submitPassword(other.onA, pending), 429);
      });
    });

    it('counts a client’s requests per minute once, not once per instance', async () => {
      await startBoth({}, { requestsPerMinute: 10 });
      const { onA, onB } = browser();
      for (let i = 0; i < 10; i += 1)
        expect((await (i % 2 === 0 ? onA : onB).get('/login')).status).toBe(200);
      expectPage(await onA.get('/login'), 429, /Too many requests from your address/);
      expectPage(await onB.get('/login'), 429, /Too many requests from your address/);
    });

    describe('with Bandwidth failing over to the console', () => {
      let fake: FakeBandwidth;
      beforeEach(async () => {
        fake = await startFakeBandwidth({ accountId: '9900001', username: 'user', password: 'password' });
        await startBoth({
          ...BANDWIDTH_TEST_ENV,
          MFA_PROVIDER: 'bandwidth,console',
          BW_MFA_BASE_URL: fake.baseUrl,
        });
      });
      afterEach(() => fake.close());

      it('skips on B a provider that A’s circuit breaker took out', async () => {
        fake.setMode(500);
        for (let i = 0; i < 2; i += 1) {
          const { onA } = browser();
          const account = await register(onA);
          expectRedirect(await submitPassword(onA, account), '/verify');
          lastConsoleCode(a.site.printed); // delivered by the console after Bandwidth failed
        }
        const askedOfBandwidth = fake.requests.length;
        expect(askedOfBandwidth).toBeGreaterThanOrEqual(2);

        const { onB } = browser();
        const account = await register(onB);
        expectRedirect(await submitPassword(onB, account), '/verify');
        // Both of B's codes, the sign-up code and the login code, went by the console alone.
        expect(b.site.printed).toEqual([
          expect.stringContaining(': Keyhole sign-up code: '),
          expect.stringContaining(': Keyhole code: '),
        ]);
        expect(fake.requests.length).toBe(askedOfBandwidth);
      });
    });

    describe('with SignalWire voice calls', () => {
      const PROJECT = 'b2c3d4e5-0000-4000-8000-000000000002';
      const TOKEN = 'PT-signalwire-token-for-tests';
      const FROM = '+12025550100';
      let fake: FakeSignalWire;
      beforeEach(async () => {
        fake = await startFakeSignalWire({ projectId: PROJECT, token: TOKEN, fromNumber: FROM });
        await startBoth({
          MFA_PROVIDER: 'signalwire',
          SIGNALWIRE_SPACE: 'example',
          SIGNALWIRE_PROJECT: PROJECT,
          SIGNALWIRE_TOKEN: TOKEN,
          SIGNALWIRE_NUMBER: FROM,
          SIGNALWIRE_BASE_URL: fake.baseUrl,
          BASE_CALLBACK_URL: 'https://keyhole.example.test',
        });
      });
      afterEach(() => fake.close());

      it('serves a call’s document made on A once, from B', async () => {
        const { onA, onB } = browser();
        /** What SignalWire asks for once the newest call is answered: the document that reads the code. */
        const answerNewestCall = (instance: Instance) =>
          request(instance.url)
            .post(new URL(fake.calls().at(-1)!.url!).pathname)
            .type('form')
            .send({ AccountSid: PROJECT, CallSid: `call-${fake.calls().length}`, CallStatus: 'in-progress' });
        // The sign-up code comes by a call too.
        const account: TestAccount = await register(
          onA,
          { channel: 'voice' },
          { enrolCode: async () => digitsIn((await answerNewestCall(a)).text)! },
        );
        expect(fake.calls()).toHaveLength(1);
        expectRedirect(await submitPassword(onA, account), '/verify');
        expect(fake.calls()).toHaveLength(2);
        const path = new URL(fake.calls().at(-1)!.url!).pathname;
        expect(path.startsWith(`${SIGNALWIRE_VOICE_PATH}/`)).toBe(true);

        const fetchDocument = (instance: Instance) =>
          request(instance.url)
            .post(path)
            .type('form')
            .send({ AccountSid: PROJECT, CallSid: 'call-2', CallStatus: 'in-progress' });
        const served = await fetchDocument(b);
        expect(served.status).toBe(200);
        const code = digitsIn(served.text)!;
        expect(code).toMatch(/^\d{6}$/);
        expect((await fetchDocument(b)).status).toBe(404);
        expect((await fetchDocument(a)).status).toBe(404);

        expectRedirect(await submitCode(onB, code), '/account');
      });
    });
  },
);
