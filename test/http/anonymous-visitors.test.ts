import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/stores/redis/client.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectRedirect } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../helpers/redis.js';
import { TEST_REDIS_URL } from '../helpers/services.js';

/** The issue asks for 100k; the benchmark does that many. This many shows the rule at test speed. */
const VISITS = 1000;
const PAGES = ['/login', '/register', '/login?registered=rosa', '/login?signedOut', '/'];

/**
 * Threat: anyone can make a server keep state for each request they send. Every new visitor's
 * login form used to write a session row; now no page a visitor without a session can load writes
 * anything to the session store.
 */
async function visitWithoutCookies(site: TestApp): Promise<void> {
  const server = site.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    let next = 0;
    const visitor = async () => {
      while (next < VISITS) {
        const path = PAGES[next++ % PAGES.length]!;
        const res = await fetch(base + path, { redirect: 'manual' });
        expect(res.status, path).toBeLessThan(400);
        expect(res.headers.getSetCookie().filter((cookie) => cookie.startsWith('mfa.sid='))).toEqual([]);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 10 }, visitor));
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Someone signed in, so that the store is not simply empty before and after. */
async function signSomeoneIn(site: TestApp) {
  const browser = createBrowser(site.app);
  const account = await register(browser);
  await submitPassword(browser, account);
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
}

describe('visitors without a session (SQL session store)', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  const snapshot = async () => ({
    sessions: await site.database.db.selectFrom('sessions').selectAll().orderBy('sid').execute(),
    tombstones: await site.database.db.selectFrom('session_tombstones').selectAll().orderBy('sid').execute(),
  });

  it(`leave the session store exactly as it was after ${VISITS} cookie-less page views`, async () => {
    await signSomeoneIn(site);
    const before = await snapshot();
    expect(before.sessions).toHaveLength(1);
    await visitWithoutCookies(site);
    expect(await snapshot()).toEqual(before);
  });

  it('leave it as it was when they post the logout form (with a good token) again and again', async () => {
    // Threat: a token from one cookie-less page view, replayed: each logout used to store a tombstone.
    await signSomeoneIn(site);
    const before = await snapshot();
    const visitor = createBrowser(site.app);
    for (let i = 0; i < 20; i += 1)
      expectRedirect(await visitor.submit('/login', '/logout'), '/login?signedOut');
    expect(await snapshot()).toEqual(before);
  });
});

describe.skipIf(!isRedisAvailable())('visitors without a session (Redis session store)', () => {
  let site: TestApp;
  let keyPrefix: string;
  let redis: RedisClient;
  beforeEach(async () => {
    keyPrefix = randomKeyPrefix();
    redis = await connectTestRedis();
    site = await createTestApp({ env: { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: keyPrefix } });
  });
  afterEach(async () => {
    await site.close();
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.destroy();
  });

  /** Every session key (live sessions and ended ids) with its value. */
  const snapshot = async () => {
    const entries: [string, string | null][] = [];
    for await (const keys of redis.scanIterator({ MATCH: `${keyPrefix}session*`, COUNT: 500 })) {
      for (const key of keys) entries.push([key, await redis.get(key)]);
    }
    return entries.sort(([a], [b]) => a.localeCompare(b));
  };

  it(`leave the session store exactly as it was after ${VISITS} cookie-less page views`, async () => {
    await signSomeoneIn(site);
    const before = await snapshot();
    expect(before.length).toBeGreaterThan(0);
    await visitWithoutCookies(site);
    expect(await snapshot()).toEqual(before);
  });
});
