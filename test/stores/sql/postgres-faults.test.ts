import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../src/stores/errors.js';
import { createSqlAuditLog } from '../../../src/stores/sql/audit-log.js';
import { createSqlChallengeStore } from '../../../src/stores/sql/challenge-store.js';
import { createSqlCodeStore } from '../../../src/stores/sql/code-store.js';
import { openSqlDatabase } from '../../../src/stores/sql/database.js';
import { SqlSessionStore } from '../../../src/stores/sql/session-store.js';
import { createSqlUserStore } from '../../../src/stores/sql/user-store.js';
import { createBrowser } from '../../helpers/agent.js';
import { createTestClock } from '../../helpers/clock.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../../helpers/flows.js';
import { TEST_DATABASE_URL } from '../../helpers/services.js';
import { isPostgresAvailable, openTestPostgresDatabase, type TestSqlDatabase } from '../../helpers/sql.js';
import { findClosedPort, startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';
import { sessionCalls } from '../contracts/session-store.js';
import { eventually } from '../../helpers/eventually.js';

/** What a request waiting on PostgreSQL may wait at most before it gets its 503 page. */
const PROMPTLY_MS = 2_500;
/** A PostgreSQL that is silent is given up on by the client's own deadline (5.5 s) and a little. */
const FROZEN_PROMPTLY_MS = 7_000;
const STORE_DOWN = /cannot reach its data right now\. Nothing you saved is lost/;

async function timed(operation: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await operation();
    return { error: undefined, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

function expectStoreUnavailable(error: unknown) {
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect((error as StoreUnavailableError).status).toBe(503);
}

function urlThrough(port: number): string {
  const url = new URL(TEST_DATABASE_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}

describe('PostgreSQL where nothing listens', () => {
  it('refuses to start promptly, with the 503 error kind rather than a hang', async () => {
    // Threat: a site (or `npm run admin`) that hangs at start, or crashes with a raw error, when
    // DATABASE_URL points at a PostgreSQL that is down.
    const postgresUrl = urlThrough(await findClosedPort());
    const { error, ms } = await timed(() => openSqlDatabase({ postgresUrl, onError: () => undefined }));
    expectStoreUnavailable(error);
    expect((error as Error).message).toMatch(/^database unavailable: /);
    expect(ms).toBeLessThan(PROMPTLY_MS);
  });
});

describe.skipIf(!isPostgresAvailable())('PostgreSQL that goes away and comes back', () => {
  let proxy: TcpProxy;
  let test: TestSqlDatabase;
  let site: TestApp | undefined;
  const poolErrors: Error[] = [];

  /** A database whose every connection passes through a proxy the test can stop and start. */
  async function openThroughProxy() {
    const target = new URL(TEST_DATABASE_URL);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    test = await openTestPostgresDatabase({
      url: urlThrough(proxy.port),
      onError: (e) => poolErrors.push(e),
    });
    return test.database;
  }

  afterEach(async () => {
    await site?.close();
    site = undefined;
    await proxy.start().catch(() => undefined); // the schema is dropped through it
    await test.close();
    await proxy.close();
  });

  it('fails every store fast while it is gone, then answers again on the same handle when it is back', async () => {
    const database = await openThroughProxy();
    const clock = createTestClock();
    const users = createSqlUserStore(database, clock);
    const ann = await users.create({
      username: 'ann',
      passwordHash: 'x',
      phone: '+12025550142',
      preferredChannel: 'sms',
    });
    const audit = createSqlAuditLog(database, clock);
    const codes = createSqlCodeStore(database, clock, 'key');
    const challenges = createSqlChallengeStore(database, clock);
    const sessions = sessionCalls(new SqlSessionStore(database, clock));

    await proxy.stop(); // every open connection is cut, and new ones are refused
    const operations: Array<() => Promise<unknown>> = [
      () => users.findByUsername('ann'),
      () =>
        users.create({ username: 'ben', passwordHash: 'x', phone: '+12025550143', preferredChannel: 'sms' }),
      () => audit.record({ type: 'logout', username: 'ann' }),
      () => codes.issue({ to: '+12025550142', scope: 'login', digits: 6, ttlMs: 60_000 }),
      () => challenges.close('some-challenge', 'accepted'),
      () => sessions.get('some-session'),
      () => sessions.retire('some-session'),
    ];
    for (const operation of operations) {
      const { error, ms } = await timed(operation);
      expectStoreUnavailable(error);
      expect(ms).toBeLessThan(PROMPTLY_MS);
    }
    expect(await database.isHealthy()).toBe(false);

    await proxy.start();
    // The same handle, never reopened: the pool makes new connections by itself.
    expect(await eventually(() => users.findByUsername('ANN'))).toEqual(ann);
    expect(await database.isHealthy()).toBe(true);
    await audit.record({ type: 'logout', username: 'ann' });
    expect(await audit.recent()).toHaveLength(1);
  });

  it('shows a person the 503 page while it is gone, nothing crashes, and the site carries on when it is back', async () => {
    site = await createTestApp({ database: await openThroughProxy() });
    const browser = createBrowser(site.app);
    const account = await register(browser);

    await proxy.stop();
    // The login form keeps nothing on the server, so it still shows; the password step needs the database.
    expectPage(await browser.get('/login'), 200, /Log in/);
    expectPage(await submitPassword(browser, account), 503, STORE_DOWN);
    const health = await browser.get('/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unavailable', database: 'down' });

    await proxy.start();
    await eventually(async () => expectRedirect(await submitPassword(browser, account), '/verify'));
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
    expectPage(await browser.get('/account'), 200, new RegExp(account.username));
  });

  it('answers the 503 page when PostgreSQL stops answering, then serves again once it answers', async () => {
    // Threat: a database host that freezes without closing its connections holds every request
    // until the operating system gives up on the socket, many minutes later.
    site = await createTestApp({ database: await openThroughProxy() });
    const browser = createBrowser(site.app);
    expectPage(await browser.get('/login'), 200, /Log in/);

    proxy.freeze();
    const { ms } = await timed(async () => expectPage(await browser.get('/login'), 503, STORE_DOWN));
    expect(ms).toBeLessThan(FROZEN_PROMPTLY_MS);
    const health = await browser.get('/healthz');
    expect(health.body).toMatchObject({ status: 'unavailable', database: 'down' });

    proxy.thaw();
    await eventually(async () => expectPage(await browser.get('/login'), 200, /Log in/));
  }, 30_000);

  it('throws away connections that stopped answering, so new ones serve while the old stay silent', async () => {
    // Threat: after a failover the pool's open connections lead to a host that is gone; reusing
    // them, each request would wait out its timeout, for as long as the kernel keeps the sockets.
    site = await createTestApp({ database: await openThroughProxy() });
    const browser = createBrowser(site.app);
    // Every pooled connection open and idle, as on a busy site.
    await Promise.all(Array.from({ length: 4 }, () => browser.get('/login')));

    proxy.freezeOpenConnections();
    const during = await Promise.all(Array.from({ length: 4 }, () => createBrowser(site!.app).get('/login')));
    for (const res of during) expect([200, 503]).toContain(res.status);

    // Without a thaw: only fresh connections can answer, once the short back-off after the silence ends.
    await eventually(async () => expectPage(await createBrowser(site!.app).get('/login'), 200, /Log in/));
    for (let i = 0; i < 5; i += 1) expectPage(await createBrowser(site.app).get('/login'), 200, /Log in/);
  }, 30_000);
});
