import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

function sessionIdFrom(res: { headers: Record<string, unknown> }, name = 'mfa.sid'): string | undefined {
  const cookie = setCookieHeaders(res as never).find((value) => value.startsWith(`${name}=`));
  return cookie?.split(';')[0]?.slice(name.length + 1);
}

/**
 * Loads a form and posts it as a browser would over HTTPS, behind a TLS-terminating proxy on
 * loopback (as TRUST_PROXY=loopback expects). The test's cookie jar keeps Secure cookies off plain
 * HTTP, so the page's cookies are sent back by hand.
 */
async function submitOverHttps(site: TestApp, path: string, fields: Record<string, string>) {
  const page = await request(site.app).get(path).set('X-Forwarded-Proto', 'https');
  return request(site.app)
    .post(path)
    .set('X-Forwarded-Proto', 'https')
    .set(
      'Cookie',
      setCookieHeaders(page).map((cookie) => cookie.split(';')[0]!),
    )
    .type('form')
    .send({ ...fields, _csrf: csrfTokenIn(page.text) });
}

describe('sessions', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'root' });
    await site.grantAdmin('root');
  });
  afterEach(() => site.close());

  async function signIn() {
    await submitPassword(browser, account);
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
  }

  it('starts no session on the login page, and sets an HttpOnly, SameSite=Lax cookie with the app’s own name at the password step', async () => {
    expect(sessionIdFrom(await browser.get('/login'))).toBeUndefined();
    const res = await submitPassword(browser, account);
    const cookie = setCookieHeaders(res).find((value) => value.startsWith('mfa.sid='));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it('uses a Secure __Host- cookie in production', async () => {
    const production = await createTestApp({ env: PRODUCTION_ENV });
    try {
      const { username, password, phone } = account;
      expectRedirect(
        await submitOverHttps(production, '/register', { username, password, phone, channel: 'sms' }),
        '/verify',
      );
      const res = await submitOverHttps(production, '/login', { username, password });
      const cookie = setCookieHeaders(res).find((value) => value.startsWith('__Host-mfa.sid='));
      expect(cookie).toMatch(/; Path=\//);
      expect(cookie).toMatch(/Secure/);
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Lax/);
      expect(cookie).not.toMatch(/Domain=/);
    } finally {
      await production.close();
    }
  });

  it('gets a new session id after the password and again after the code', async () => {
    // Threat: session fixation — an attacker plants a session id and waits for the victim to log in.
    // A visitor has no session id before the password step (the login form needs none).
    const anonymous = sessionIdFrom(await browser.get('/login'));
    const firstPassword = sessionIdFrom(await submitPassword(browser, account));
    const afterPassword = sessionIdFrom(await submitPassword(browser, account));
    const afterCode = sessionIdFrom(await submitCode(browser, lastConsoleCode(site.printed)));
    expect(anonymous).toBeUndefined();
    expect(firstPassword).toBeDefined();
    expect(afterPassword).toBeDefined();
    expect(afterCode).toBeDefined();
    // A session the browser already had is replaced at the password step too.
    expect(new Set([firstPassword, afterPassword, afterCode]).size).toBe(3);
  });

  it('keeps no password and no code in the stored session', async () => {
    await submitPassword(browser, account);
    const code = lastConsoleCode(site.printed);
    const stored = await site.database.db.selectFrom('sessions').select('data').execute();
    const everything = stored.map((row) => row.data).join('\n');
    expect(everything).not.toContain(account.password);
    expect(everything).not.toContain(code);
  });

  it('forgets the half-logged-in state after 10 minutes', async () => {
    await submitPassword(browser, account);
    site.clock.advanceMinutes(10);
    site.clock.advance(1000);
    expectRedirect(await browser.get('/verify'), '/login');
    expectPage(await browser.get('/login'), 200, /Your login took too long/);
  });

  it('ends a session after 30 minutes without a request', async () => {
    await signIn();
    site.clock.advanceMinutes(29);
    expectPage(await browser.get('/account'), 200);
    site.clock.advanceMinutes(29);
    expectPage(await browser.get('/account'), 200);
    site.clock.advanceMinutes(31);
    expectRedirect(await browser.get('/account'), '/login?next=%2Faccount');
  });

  it('writes nothing for a signed-in page that changes nothing, and records activity once a minute', async () => {
    await signIn();
    const stored = async () =>
      site.database.db.selectFrom('sessions').select(['data', 'expires_at']).executeTakeFirstOrThrow();
    const lastSeenAt = (row: { data: string }) =>
      (JSON.parse(row.data) as { signedIn: { lastSeenAt: number } }).signedIn.lastSeenAt;
    const atSignIn = await stored();

    // Within a minute: neither a session write nor a new cookie, however many pages.
    // Pages at 1 s, 20 s and 59 s after the code.
    for (const step of [1000, 19_000, 39_000]) {
      site.clock.advance(step);
      const page = await browser.get('/account');
      expectPage(page, 200);
      expect(sessionIdFrom(page)).toBeUndefined();
      expect(await stored()).toEqual(atSignIn);
    }

    // A minute on: the activity is recorded (the session saved, so its deadline moves) and the
    // cookie is sent again.
    site.clock.advance(2000);
    const refreshed = await browser.get('/account');
    expect(sessionIdFrom(refreshed)).toBeDefined();
    const after = await stored();
    expect(lastSeenAt(after)).toBe(site.clock.now().getTime());
    expect(after.expires_at).toBeGreaterThanOrEqual(atSignIn.expires_at);
  });

  it('keeps a session that is used every 50 seconds signed in for hours', async () => {
    await signIn();
    for (let seconds = 0; seconds < 2 * 60 * 60; seconds += 50) {
      site.clock.advance(50_000);
      expectPage(await browser.get('/account'), 200);
    }
  });

  it('ends a session after 12 hours however active it is', async () => {
    await signIn();
    for (let minutes = 0; minutes < 12 * 60; minutes += 20) {
      site.clock.advanceMinutes(20);
      if (minutes + 20 < 12 * 60) expectPage(await browser.get('/account'), 200);
    }
    site.clock.advanceMinutes(1);
    expectRedirect(await browser.get('/account'), '/login?next=%2Faccount');
  });

  it('marks pages behind login as not to be stored', async () => {
    await signIn();
    for (const path of ['/account', '/admin']) {
      expect((await browser.get(path)).headers['cache-control']).toBe('no-store');
    }
  });

  it('destroys the session on logout: the old cookie no longer works', async () => {
    await submitPassword(browser, account);
    const codeStep = await submitCode(browser, lastConsoleCode(site.printed));
    const sessionCookie = sessionIdFrom(codeStep);
    expect(sessionCookie).toBeDefined();
    const res = await browser.submit('/account', '/logout');
    expectRedirect(res, '/login?signedOut');
    expect(setCookieHeaders(res).some((value) => /^mfa\.sid=;/.test(value))).toBe(true);
    expect(await site.database.db.selectFrom('sessions').selectAll().execute()).toEqual([]);
    // Replaying the old cookie gets nothing.
    const replay = await createBrowser(site.app)
      .agent.get('/account')
      .set('Cookie', `mfa.sid=${sessionCookie}`);
    expectRedirect(replay, '/login?next=%2Faccount');
  });
});

describe('the admin verification', () => {
  let site: TestApp;
  let browser: Browser;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    const account = await register(browser, { username: 'root' });
    await site.grantAdmin('root');
    await submitPassword(browser, account);
    await submitCode(browser, lastConsoleCode(site.printed));
    await browser.submit('/admin', '/admin/step-up');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'admin')), '/admin');
  });
  afterEach(() => site.close());

  it('never slides: it ends 15 minutes after the code however busy the admin is', async () => {
    for (let minute = 0; minute < 14; minute += 2) {
      site.clock.advanceMinutes(2);
      expectPage(await browser.get('/admin'), 200, /Recent security events/);
    }
    site.clock.advanceMinutes(1);
    const after = await browser.get('/admin');
    expectPage(after, 200, /Your secure-area verification has expired/);
    expect(after.text).not.toMatch(/Recent security events/);
  });

  it('follows ADMIN_SCOPE_TTL_MINUTES', async () => {
    const short = await createTestApp({ env: { ADMIN_SCOPE_TTL_MINUTES: '2' } });
    try {
      const admin = createBrowser(short.app);
      const account = await register(admin, { username: 'root' });
      await short.grantAdmin('root');
      await submitPassword(admin, account);
      await submitCode(admin, lastConsoleCode(short.printed));
      await admin.submit('/admin', '/admin/step-up');
      await submitCode(admin, lastConsoleCode(short.printed, 'admin'));
      short.clock.advance(119_000);
      expectPage(await admin.get('/admin'), 200, /Recent security events/);
      short.clock.advance(2000);
      expectPage(await admin.get('/admin'), 200, /Confirm it is you/);
    } finally {
      await short.close();
    }
  });
});
