import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { StoreUnavailableError } from '../../src/stores/errors.js';
import { createBrowser } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage } from '../helpers/expectations.js';
import { register, submitPassword } from '../helpers/flows.js';

describe('GET /healthz', () => {
  let site: TestApp | undefined;
  afterEach(() => site?.close());

  it('answers 200 JSON while the database answers, with each provider’s state and no secrets', async () => {
    site = await createTestApp();
    // Outside production the details are for anyone, whatever the address.
    const res = await request(site.app).get('/healthz').set('X-Forwarded-For', '203.0.113.7');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      database: 'up',
      providers: [{ name: 'console', channels: ['sms', 'voice'], state: 'up' }],
    });
  });

  it('shows pages a clear 503 when the database fails, and comes back when it does', async () => {
    site = await createTestApp();
    const app = site.app;
    const browser = createBrowser(app);
    // A browser with a session: each of its pages reads it from the database. (A visitor's login
    // form needs no database at all.)
    await submitPassword(browser, await register(browser));
    await site.database.close();
    const page = await browser.get('/login');
    expectPage(page, 503, /cannot reach its data right now\. Nothing you saved is lost/);
    site = undefined;
  });

  it('asks clients to retry in 5 seconds, and logs an outage in one line, not one per request', async () => {
    const logLines: string[] = [];
    site = await createTestApp({ logLines, logLevel: 'warn' });
    const browser = createBrowser(site.app);
    // A browser with a session: its pages need the store.
    await submitPassword(browser, await register(browser));
    await site.database.close();
    const pages = [];
    for (let i = 0; i < 20; i += 1) pages.push(await browser.get('/verify'));
    for (const page of pages) {
      expect(page.status).toBe(503);
      expect(page.headers['retry-after']).toBe('5');
    }
    const outageLines = logLines
      .map((line) => JSON.parse(line) as { msg: string; store?: string; stack?: unknown })
      .filter((entry) => entry.msg === 'a store is unavailable: requests get the 503 page');
    expect(outageLines).toEqual([expect.objectContaining({ store: 'database' })]);
    expect(logLines.filter((line) => line.includes('"request failed"'))).toEqual([]);
    site = undefined;
  });

  it('still answers, with the providers’ state "unknown", when the breaker’s store does not answer', async () => {
    // The breaker's state may live in Redis; Redis being away must not read as the site being down.
    const unreachable = () => Promise.reject(new StoreUnavailableError('provider health', new Error('gone')));
    site = await createTestApp({
      providers: createProviderPool(
        [{ name: 'scripted', channels: ['sms'], send: async () => ({}), verify: async () => 'invalid' }],
        {
          health: {
            read: unreachable,
            recordAnswer: unreachable,
            recordMisconfigured: unreachable,
            recordOutage: unreachable,
          },
        },
      ),
    });
    const res = await request(site.app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', database: 'up', providers: 'unknown' });
  });

  it('answers 503 when the database does not', async () => {
    site = await createTestApp();
    const app = site.app;
    await site.database.close();
    const res = await createBrowser(app).get('/healthz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'unavailable', database: 'down' });
    site = undefined;
  });
});

describe('GET /healthz in production', () => {
  // Threat: which providers are configured, and which are failing right now, tells an attacker
  // what to target and when; a load balancer needs only "ok".
  const HEALTHZ_TOKEN = 'h'.repeat(40);
  const PUBLIC_CLIENT = '203.0.113.7'; // behind the site's own proxy on loopback (TRUST_PROXY=loopback)
  let site: TestApp | undefined;
  afterEach(() => site?.close());

  const healthz = (app: TestApp['app'], headers: Record<string, string> = {}) =>
    request(app)
      .get('/healthz')
      .set({ 'X-Forwarded-For': PUBLIC_CLIENT, ...headers });

  it('tells the public only whether the site is up', async () => {
    site = await createTestApp({ env: { ...PRODUCTION_ENV, HEALTHZ_TOKEN } });
    const res = await healthz(site.app);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('gives the details to a monitor with the bearer token, and not for a wrong one', async () => {
    site = await createTestApp({ env: { ...PRODUCTION_ENV, HEALTHZ_TOKEN } });
    const withToken = await healthz(site.app, { Authorization: `Bearer ${HEALTHZ_TOKEN}` });
    expect(withToken.body).toEqual({
      status: 'ok',
      database: 'up',
      providers: [{ name: 'bandwidth', channels: ['sms', 'voice'], state: 'up' }],
    });
    for (const authorization of [`Bearer ${HEALTHZ_TOKEN}x`, `Bearer ${'g'.repeat(40)}`, HEALTHZ_TOKEN]) {
      expect((await healthz(site.app, { Authorization: authorization })).body).toEqual({ status: 'ok' });
    }
  });

  it('shows no details to a token when none is configured', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    const res = await healthz(site.app, { Authorization: `Bearer ${HEALTHZ_TOKEN}` });
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('gives the details to a client on this machine', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    const res = await request(site.app).get('/healthz');
    expect(res.body).toMatchObject({ status: 'ok', database: 'up', providers: [{ name: 'bandwidth' }] });
  });

  it.each([
    ['an IPv4 address with a port', '203.0.113.66:40000'],
    ['a bracketed IPv6 address with a port', '[2001:db8::1]:443'],
    ['"unknown"', 'unknown'],
    ['junk', '<b>not an address</b>'],
    ['a list ending in junk', '203.0.113.7, garbage'],
  ])('shows no details to a client forwarded by the local proxy as %s', async (_, forwarded) => {
    // Threat: a forwarded value the site cannot read falls back to the proxy's own address, which
    // on this host is loopback: every client would count as local and see the details.
    site = await createTestApp({ env: PRODUCTION_ENV });
    const res = await request(site.app).get('/healthz').set('X-Forwarded-For', forwarded);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers the public 503 {"status":"unavailable"} when the database does not answer', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    const app = site.app;
    await site.database.close();
    site = undefined;
    const res = await healthz(app);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ status: 'unavailable' });
  });

  it('refuses a HEALTHZ_TOKEN shorter than 32 characters, by name', () => {
    expect(() =>
      loadConfig({ ...PRODUCTION_ENV, SESSION_SECRET: 's'.repeat(32), HEALTHZ_TOKEN: 'short' }),
    ).toThrow(/HEALTHZ_TOKEN: must be at least 32 characters/);
  });
});

describe('GET /dev/outbox', () => {
  let site: TestApp | undefined;
  afterEach(() => site?.close());

  it('lists the console provider’s messages, newest first, outside production', async () => {
    site = await createTestApp();
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await submitPassword(browser, account, 'sms');
    site.clock.advance(30_000);
    await browser.submit('/verify', '/verify/resend', { channel: 'voice' });
    const page = await browser.get('/dev/outbox');
    expectPage(page, 200, /Outbox/);
    const texts = [...page.text.matchAll(/data-outbox-text>([^<]+)</g)].map((match) => match[1]);
    expect(texts).toHaveLength(3);
    expect(texts[0]).toMatch(/^Your Keyhole code is \d \d \d \d \d \d$/);
    expect(texts[1]).toMatch(/^Keyhole code: (\d{6})\n\n@localhost #\1$/);
    // The oldest: the code that proved the number at sign-up.
    expect(texts[2]).toMatch(/^Keyhole sign-up code: (\d{6})\n\n@localhost #\1$/);
  });

  it('does not exist in production', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    expectPage(await createBrowser(site.app).get('/dev/outbox'), 404);
  });
});
