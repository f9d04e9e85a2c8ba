import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser, type Response } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

/**
 * Generous on purpose: with the lock handled, every answer below comes within about half a second;
 * before, each request that wrote waited 5 s with the whole process frozen.
 */
const FAST_ENOUGH_MS = 1500;

async function timed(pending: PromiseLike<Response>): Promise<{ res: Response; ms: number }> {
  const startedAt = Date.now();
  const res = await pending;
  return { res, ms: Date.now() - startedAt };
}

const STORE_DOWN = /cannot reach its data right now\. Nothing you saved is lost/;

describe('while another process holds the database’s write lock', () => {
  // Threat: one process holding SQLite's write lock (a backup, a maintenance command, a stuck
  // script) must not freeze the whole site, nor leave people with forms that can never be posted.
  let site: TestApp;
  let logLines: string[];
  let signedIn: Browser;
  let onLoginPage: Browser;
  let onLoginPageToken: string;
  let account: TestAccount;
  let lockHolder: Database.Database;

  beforeEach(async () => {
    logLines = [];
    site = await createTestApp({ logLines, logLevel: 'warn' });
    signedIn = createBrowser(site.app);
    account = await register(signedIn);
    await submitPassword(signedIn, account);
    expectRedirect(await submitCode(signedIn, lastConsoleCode(site.printed)), '/account');
    expectPage(await signedIn.get('/account'), 200);

    onLoginPage = createBrowser(site.app);
    onLoginPageToken = csrfTokenIn((await onLoginPage.get('/login')).text);

    lockHolder = new Database(site.databasePath);
    lockHolder.exec('BEGIN IMMEDIATE');
  });
  afterEach(async () => {
    if (lockHolder.inTransaction) lockHolder.exec('ROLLBACK');
    lockHolder.close();
    await site.close();
  });

  const postLogin = (browser: Browser, token: string) =>
    browser.agent
      .post('/login')
      .type('form')
      .send({ username: account.username, password: account.password, _csrf: token });

  it('serves static files, /healthz and pages that need no write at once, and the rest a quick 503', async () => {
    const [stylesheet, health, accountPage, newVisitor, formPost] = await Promise.all([
      timed(request(site.app).get('/assets/css/site.css')),
      timed(request(site.app).get('/healthz')),
      timed(signedIn.get('/account')),
      timed(request(site.app).get('/login')),
      timed(postLogin(onLoginPage, onLoginPageToken)),
    ]);

    expect(stylesheet.res.status).toBe(200);
    expect(health.res.status).toBe(200);
    expect(health.res.body).toMatchObject({ status: 'ok', database: 'up' });
    expectPage(accountPage.res, 200, new RegExp(account.username));
    // A new visitor's login form keeps nothing on the server, so it needs no write.
    expectPage(newVisitor.res, 200, /Log in/);
    expectPage(formPost.res, 503, STORE_DOWN);

    for (const { ms } of [stylesheet, health, accountPage, newVisitor, formPost]) {
      expect(ms).toBeLessThan(FAST_ENOUGH_MS);
    }
  });

  it('reports a session it could not save after the page went out in the site’s log', async () => {
    site.clock.advance(60_000); // the visit moves the session's last-seen time: a save, not a touch
    expectPage(await signedIn.get('/account'), 200);
    await vi.waitFor(() => {
      const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(entries).toContainEqual(
        expect.objectContaining({
          msg: 'request failed after its response began',
          path: '/account',
          err: expect.objectContaining({ message: expect.stringContaining('database is locked') }),
        }),
      );
    });
  });

  it('works again as soon as the lock is released', async () => {
    expectPage(await postLogin(onLoginPage, onLoginPageToken), 503);
    lockHolder.exec('ROLLBACK');

    const newcomer = createBrowser(site.app);
    const loginPage = await newcomer.get('/login');
    expectPage(loginPage, 200, /Log in/);
    expectRedirect(await postLogin(newcomer, csrfTokenIn(loginPage.text)), '/verify');
    expectRedirect(await postLogin(onLoginPage, onLoginPageToken), '/verify');
    expectPage(await signedIn.get('/account'), 200, new RegExp(account.username));
  });
  it('keeps serving static files while many form posts meet the lock at once', async () => {
    // Threat: each request that meets the lock blocking the event loop for a moment; sixty of
    // them at once used to freeze every request for seconds. A new visitor's page no longer
    // writes at all, so here it is login posts that meet the lock: past the login throttle's
    // limit each is refused before any password check, and its refusal is audited (a write).
    const wrongPassword = () =>
      onLoginPage.agent
        .post('/login')
        .type('form')
        .send({ username: account.username, password: 'not the password', _csrf: onLoginPageToken })
        .then((res) => res);
    lockHolder.exec('ROLLBACK');
    for (let i = 0; i < 10; i += 1) expectPage(await wrongPassword(), 401);
    expectPage(await wrongPassword(), 429);
    lockHolder.exec('BEGIN IMMEDIATE');

    const posts = Array.from({ length: 60 }, wrongPassword);
    await Promise.race(posts); // the first has met the lock; most of the others are meeting it now
    const stylesheet = await timed(request(site.app).get('/assets/css/site.css'));
    const answers = await Promise.all(posts);

    expect(stylesheet.res.status).toBe(200);
    expect(stylesheet.ms).toBeLessThan(FAST_ENOUGH_MS);
    for (const answer of answers) expectPage(answer, 503, STORE_DOWN);
  });
  it('logs the browser out even while the database is locked, and ends the session once it can', async () => {
    // Threat: on a shared computer, "Log out" answered with an error page leaves the next person
    // signed in as the one who left.
    const token = csrfTokenIn((await signedIn.get('/account')).text);
    const sessionCookie = signedIn.cookie('mfa.sid')!;

    const logout = await signedIn.agent.post('/logout').type('form').send({ _csrf: token });
    expectRedirect(logout, '/login?signedOut');
    const cleared = setCookieHeaders(logout).filter((cookie) => cookie.startsWith('mfa.sid='));
    expect(cleared).toHaveLength(1);
    expect(cleared[0]).toMatch(/Expires=Thu, 01 Jan 1970/);

    lockHolder.exec('ROLLBACK');
    // The session itself ends as soon as the store answers again (a retry on a timer).
    await vi.waitFor(
      async () =>
        expectRedirect(await request(site.app).get('/account').set('Cookie', sessionCookie), /^\/login/),
      { timeout: 5_000, interval: 200 },
    );
  });
});
