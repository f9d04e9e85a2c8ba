import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArgon2Hasher } from '../../src/users/passwords.js';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { eventually } from '../helpers/eventually.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp } from '../helpers/mail.js';
import {
  REMEMBER_COOKIE,
  logInRemembered,
  loginAfterPassword,
  plantCookie,
  rememberedToken,
} from '../helpers/remembered.js';
import { openNewestLink } from '../helpers/security.js';

const DAY_MS = 24 * 60 * 60_000;
/** Past the per-account cooldown and send window between two logins that each send a code. */
const BETWEEN_LOGINS_MS = 4 * 60_000;

/**
 * "Remember this browser" at the login (issue 12). Threats: a remembered cookie copied off the
 * machine and used again; a browser remembered for one account used with another account's
 * password; a remembered browser that opens more than the login (the secure area, settings, a
 * reset); one kept past its 30 days.
 */
describe('a remembered browser at the login', () => {
  let site: TestApp;
  let laptop: Browser;
  let rosa: TestAccount;
  let rosaId: number;
  beforeEach(async () => {
    site = await createTestApp();
    laptop = createBrowser(site.app);
    rosa = await register(createBrowser(site.app), { username: 'rosa' });
    rosaId = (await site.users.findByUsername('rosa'))!.id;
  });
  afterEach(() => site.close());

  it('skips the code at the next login from the same browser, and the audit log says how', async () => {
    await logInRemembered(site, laptop, rosa);
    site.clock.advance(DAY_MS);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
    expectPage(await laptop.get('/account'), 200);
    const events = await site.audit.forUser(rosaId, new Date(0));
    expect(events.find((event) => event.type === 'browser_remembered')?.detail).toBe('Unknown browser');
    expect(events[0]).toMatchObject({ type: 'login_succeeded' });
    expect(events[0]!.detail).toMatch(/remembered browser/);
  });

  it('asks for the code when the box was not ticked, and in another browser', async () => {
    expectRedirect(await submitPassword(laptop, rosa), '/verify');
    expectRedirect(await submitCode(laptop, lastConsoleCode(site.printed)), '/account');
    expect(laptop.cookie(REMEMBER_COOKIE)).toBeUndefined();
    site.clock.advance(BETWEEN_LOGINS_MS);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/verify');

    const remembered = createBrowser(site.app);
    await logInRemembered(site, remembered, rosa);
    expect(await loginAfterPassword(createBrowser(site.app), rosa)).toBe('/verify');
  });

  it('never skips the code of another account with this browser’s cookie', async () => {
    const sami = await register(createBrowser(site.app), { username: 'sami' });
    await logInRemembered(site, laptop, rosa);
    const token = rememberedToken(laptop);
    expect(await loginAfterPassword(laptop, sami)).toBe('/verify');
    // Rosa's remembered browser is still hers.
    expect(rememberedToken(laptop)).toBe(token);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
  });

  it('is used only after the right password: a wrong one is a 401, and the cookie is left unused', async () => {
    await logInRemembered(site, laptop, rosa);
    const token = rememberedToken(laptop);
    expectRedirect(await laptop.submit('/account', '/logout'), '/login?signedOut');
    expectPage(await submitPassword(laptop, { ...rosa, password: 'not her password' }), 401);
    expect(rememberedToken(laptop)).toBe(token);
  });

  it('rotates at each use: the cookie value used once no longer skips the code', async () => {
    // Threat: a copy of the cookie, taken before its owner's next login, used after it.
    await logInRemembered(site, laptop, rosa);
    const copied = rememberedToken(laptop);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
    expect(rememberedToken(laptop)).not.toBe(copied);

    const thief = createBrowser(site.app);
    await thief.get('/login');
    plantCookie(thief, REMEMBER_COOKIE, copied);
    expect(await loginAfterPassword(thief, rosa)).toBe('/verify');
    expect(thief.cookie(REMEMBER_COOKIE)).toBeUndefined();
    // The owner's browser, which holds the new value, still skips it.
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
  });

  it('lets exactly one of two logins racing with one cookie skip the code', async () => {
    await logInRemembered(site, laptop, rosa);
    const token = rememberedToken(laptop);
    const copy = createBrowser(site.app);
    await copy.get('/login');
    plantCookie(copy, REMEMBER_COOKIE, token);
    expectRedirect(await laptop.submit('/account', '/logout'), '/login?signedOut');
    const [first, second] = await Promise.all([submitPassword(laptop, rosa), submitPassword(copy, rosa)]);
    expect([first.headers.location, second.headers.location].sort()).toEqual(['/account', '/verify']);
  });

  it('stops skipping the code 30 days after the box was ticked', async () => {
    await logInRemembered(site, laptop, rosa);
    site.clock.advance(29 * DAY_MS);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
    site.clock.advance(DAY_MS);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/verify');
  });

  it('keeps 10 remembered browsers per account: an eleventh forgets the oldest', async () => {
    const browsers: Browser[] = [];
    for (let index = 0; index < 11; index += 1) {
      const browser = createBrowser(site.app);
      await logInRemembered(site, browser, rosa);
      browsers.push(browser);
      site.clock.advance(BETWEEN_LOGINS_MS);
    }
    expect(await site.stores.rememberedBrowsers.listForUser(rosaId)).toHaveLength(10);
    expect(await loginAfterPassword(browsers[0]!, rosa)).toBe('/verify');
    expect(await loginAfterPassword(browsers[1]!, rosa)).toBe('/account');
    expect(await loginAfterPassword(browsers[10]!, rosa)).toBe('/account');
  });

  it('never stands in for the code of the settings', async () => {
    await logInRemembered(site, laptop, rosa);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
    const token = rememberedToken(laptop);

    expectRedirect(await laptop.submit('/account/security', '/account/security/confirm'), '/verify');
    expectPage(await laptop.get('/account/security'), 200);
    expect(await laptop.get('/account/security')).not.toMatchObject({
      text: expect.stringContaining('You can change your settings until'),
    });
    // Not even looked at: the token is the same.
    expect(rememberedToken(laptop)).toBe(token);
  });

  it('is never offered to an admin, nor honoured for one: an admin always gives the second step', async () => {
    // Threat: a remembered browser lets the password alone sign in, and an admin's account, with
    // the secure area one step-up away, must always prove a second factor at the login.
    await logInRemembered(site, laptop, rosa);
    await site.grantAdmin('rosa');
    const token = rememberedToken(laptop);
    site.clock.advance(BETWEEN_LOGINS_MS);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/verify');
    // Left as it was (not rotated, not cleared): it opens nothing while the account is an admin's.
    expect(rememberedToken(laptop)).toBe(token);

    const page = await laptop.get('/verify');
    expectPage(page, 200, /Enter your code/);
    expect(page.text).not.toContain('name="remember"');
    // Ticked anyway (a form from before, or made up): nothing is remembered.
    const other = createBrowser(site.app);
    site.clock.advance(BETWEEN_LOGINS_MS);
    expectRedirect(await submitPassword(other, rosa), '/verify');
    expectRedirect(
      await other.submit('/verify', '/verify', { code: lastConsoleCode(site.printed), remember: '1' }),
      '/account',
    );
    expect(other.cookie(REMEMBER_COOKIE)).toBeUndefined();
    expect(await site.stores.rememberedBrowsers.listForUser(rosaId)).toHaveLength(1);

    // Once the role is taken away, the browser is remembered again.
    await site.users.setAdmin('rosa', false);
    site.clock.advance(BETWEEN_LOGINS_MS);
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
  });
});

describe('a remembered browser and a password reset', () => {
  it('still asks for the reset code', async () => {
    const mail = await createMailTestApp();
    try {
      const { site } = mail;
      const browser = createBrowser(site.app);
      const rosa = await register(createBrowser(site.app), { username: 'rosa', email: 'rosa@example.com' });
      await openNewestLink(mail, createBrowser(site.app), 'rosa@example.com');
      await logInRemembered(site, browser, rosa);
      const token = rememberedToken(browser);
      expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');

      expectPage(await browser.submit('/forgot', '/forgot', { identifier: 'rosa' }), 200, /Check your email/);
      const email = await mail.waitForMail('rosa@example.com', 2);
      const link = new URL(/https?:\/\/\S+/.exec(email.text)![0]).pathname;
      expectRedirect(await browser.submit(link, link), '/verify');
      expectPage(await browser.get('/verify'), 200, /Enter your reset code/);
      expect(rememberedToken(browser)).toBe(token);
    } finally {
      await mail.close();
    }
  });
});

describe('the remembered-browser cookie in production', () => {
  it('is a Secure, HttpOnly, SameSite=Lax __Host- cookie for Path=/, with no Domain', async () => {
    const production = await createTestApp({ env: PRODUCTION_ENV });
    try {
      const password = 'correct horse battery staple';
      const user = (await production.users.create({
        username: 'rosa',
        passwordHash: await (await createArgon2Hasher()).hash(password),
        phone: '+12025550177',
        preferredChannel: 'sms',
      }))!;
      await production.users.markPhoneProven(user.id, user.phone);
      // A browser remembered at an earlier login (its code page is the lead's, and production sends real codes).
      const token = randomBytes(32).toString('base64url');
      await production.stores.rememberedBrowsers.add(
        {
          userId: user.id,
          tokenHash: createHash('sha256').update(token).digest('hex'),
          label: 'Firefox on Windows',
          expiresAt: new Date(production.clock.now().getTime() + 30 * DAY_MS),
        },
        { maxPerAccount: 10 },
      );
      const page = await request(production.app).get('/login').set('X-Forwarded-Proto', 'https');
      const res = await request(production.app)
        .post('/login')
        .set('X-Forwarded-Proto', 'https')
        .set('Cookie', [
          ...setCookieHeaders(page).map((cookie) => cookie.split(';')[0]!),
          `__Host-keyhole.remember=${token}`,
        ])
        .type('form')
        .send({ username: 'rosa', password, _csrf: csrfTokenIn(page.text) });
      expectRedirect(res, '/account');
      const cookie = setCookieHeaders(res).find((value) => value.startsWith('__Host-keyhole.remember='));
      expect(cookie).toMatch(/^__Host-keyhole\.remember=[A-Za-z0-9_-]{43}; /);
      expect(cookie).not.toContain(token);
      expect(cookie).toMatch(/; Path=\//);
      expect(cookie).toMatch(/; Secure/);
      expect(cookie).toMatch(/; HttpOnly/);
      expect(cookie).toMatch(/; SameSite=Lax/);
      expect(cookie).not.toMatch(/Domain=/i);
      await eventually(async () =>
        expect((await production.audit.forUser(user.id, new Date(0)))[0]?.type).toBe('login_succeeded'),
      );
    } finally {
      await production.close();
    }
  });
});
