import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/stores/redis/client.js';
import { createRedisClient } from '../../src/stores/redis/client.js';
import { createRedisSessionStore } from '../../src/stores/redis/session-store.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestClock } from '../helpers/clock.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../helpers/expectations.js';
import { GOOD_PASSWORD, register, submitCode, submitPassword } from '../helpers/flows.js';
import {
  connectTestRedis,
  countKeysWithPrefix,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../helpers/redis.js';
import { findClosedPort } from '../helpers/tcp-proxy.js';

const sessionCookieOf = (res: { headers: Record<string, unknown> }) =>
  setCookieHeaders(res as never)
    .find((cookie) => cookie.startsWith('mfa.sid='))
    ?.split(';')[0];

describe.skipIf(!isRedisAvailable())('sessions kept in Redis', () => {
  let redis: RedisClient;
  let keyPrefix: string;
  let site: TestApp;
  beforeEach(async () => {
    redis = await connectTestRedis();
    keyPrefix = randomKeyPrefix();
    const clock = createTestClock();
    site = await createTestApp({ clock, sessionStore: createRedisSessionStore(redis, { keyPrefix, clock }) });
  });
  afterEach(async () => {
    site.close();
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.destroy();
  });

  it('signs a person in with a new session id at each step, and keeps only live sessions', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'rosa' });
    const afterPassword = await submitPassword(browser, account);
    expectRedirect(afterPassword, '/verify');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
    const page = await browser.get('/account');
    expectPage(page, 200, /rosa/);

    const halfSignedIn = sessionCookieOf(afterPassword)!;
    const signedIn = browser.cookie('mfa.sid')!;
    expect(signedIn).not.toBe(halfSignedIn);
    // The half-signed-in id was retired when the code was accepted: it opens nothing now.
    expectRedirect(await request(site.app).get('/verify').set('Cookie', halfSignedIn), '/login');
    expect(await countKeysWithPrefix(redis, `${keyPrefix}session:`)).toBe(1);
  });

  it('keeps a logged-out cookie refused', async () => {
    // Threat: the cookie of a logged-out session, replayed (a shared computer, a copied header).
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'rosa' });
    await submitPassword(browser, account);
    await submitCode(browser, lastConsoleCode(site.printed));
    expectPage(await browser.get('/account'), 200);
    const signedIn = browser.cookie('mfa.sid')!;

    expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');

    expectRedirect(await request(site.app).get('/account').set('Cookie', signedIn), '/login?next=%2Faccount');
    expect(await countKeysWithPrefix(redis, `${keyPrefix}session:`)).toBe(0);
  });
});

describe('sessions in a Redis that does not answer', () => {
  let site: TestApp;
  let redis: RedisClient;
  afterEach(() => {
    site.close();
    redis.destroy();
  });

  it('show the 503 page, never a stack trace, and the site keeps serving', async () => {
    redis = createRedisClient(`redis://127.0.0.1:${await findClosedPort()}`, { onError: () => undefined });
    redis.connect().catch(() => undefined);
    const clock = createTestClock();
    site = await createTestApp({
      clock,
      sessionStore: createRedisSessionStore(redis, { keyPrefix: randomKeyPrefix(), clock }),
    });

    // The forms before the password step keep nothing in the session store, so they work; the
    // password step is where a session starts, and it fails before any code is sent.
    const browser = createBrowser(site.app);
    expectPage(await browser.get('/login'), 200, /Log in/);
    const account = { username: 'rosa', password: GOOD_PASSWORD, phone: '+12025550140', channel: 'sms' as const };
    // The account is made; its sign-up code would need a session, so none is sent.
    expectPage(await browser.submit('/register', '/register', account), 503, /try again/i);
    expectPage(await submitPassword(createBrowser(site.app), account), 503, /try again/i);
    expect(site.printed).toEqual([]);
    expect((await request(site.app).get('/healthz')).status).toBe(200);
  });
});
