import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Response as ExpressResponse } from 'express';
import { createKnownDevices } from '../../src/auth/known-device.js';
import type { PasswordHasher } from '../../src/users/passwords.js';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { createTestClock } from '../helpers/clock.js';
import { expectPage, expectRedirect, setCookieHeaders, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

describe('POST /login', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('says the same thing for a wrong password and an unknown user', async () => {
    // Threat: learning which usernames exist from the login form.
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const wrongPassword = await browser.submit('/login', '/login', {
      username: account.username,
      password: 'not the password',
    });
    const unknownUser = await browser.submit('/login', '/login', {
      username: 'nobody-here',
      password: 'not the password',
    });
    expectPage(wrongPassword, 401, /Invalid username or password/);
    expectPage(unknownUser, 401, /Invalid username or password/);
    expect(visibleText(wrongPassword.text).replace(account.username, 'X')).toBe(
      visibleText(unknownUser.text).replace('nobody-here', 'X'),
    );
  });

  it('puts the focus on the username, and "Error: " first in the title when the form has problems', async () => {
    // A screen reader says the title first; the error summary takes the focus itself (site.js).
    const browser = createBrowser(site.app);
    const form = await browser.get('/login');
    expect(form.text).toMatch(/<title>Log in · Keyhole<\/title>/);
    expect(form.text).toMatch(/id="username"[^>]* autofocus>/);
    const refused = await browser.submit('/login', '/login', { username: 'nobody-here', password: 'x' });
    expectPage(refused, 401);
    expect(refused.text).toMatch(/<title>Error: Log in · Keyhole<\/title>/);
    expect(refused.text).not.toMatch(/autofocus/);
    const registration = await browser.submit('/register', '/register', { username: 'a' });
    expect(registration.text).toMatch(/<title>Error: Create an account · Keyhole<\/title>/);
  });

  it.each(['ADA', 'Ada', 'ａｄａ'])('logs "ada" in when the name is typed as %j', async (typed) => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'ada' });
    expectRedirect(await submitPassword(browser, { ...account, username: typed }), '/verify');
  });

  it('checks a hash for an unknown user too, so both answers take the same time', async () => {
    // Threat: timing the response to learn which usernames exist.
    await site.close();
    const calls: (string | null)[] = [];
    const countingHasher: PasswordHasher = {
      hash: async (password) => `hash:${password}`,
      verify: async (hash, password) => {
        calls.push(hash);
        return hash === `hash:${password}`;
      },
    };
    site = await createTestApp({ hasher: countingHasher });
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await browser.submit('/login', '/login', { username: account.username, password: 'wrong password' });
    await browser.submit('/login', '/login', { username: 'nobody-here', password: 'wrong password' });
    expect(calls).toEqual([`hash:${account.password}`, null]);
  });

  it('pre-selects the channel this browser used last time', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { channel: 'sms' });
    await submitPassword(browser, account, 'voice');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
    await browser.submit('/account', '/logout');
    const login = await browser.get('/login');
    expect(login.text).toMatch(/value="voice" checked/);
    expect((await site.users.findByUsername(account.username))?.preferredChannel).toBe('voice');
  });

  it("uses the account's saved channel when none is chosen", async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { channel: 'voice' });
    expectRedirect(await submitPassword(browser, account), '/verify');
    expect(site.printed.at(-1)).toMatch(/^Voice call to /);
  });

  it('returns to the page that asked for login, but only on this site', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const loginPage = await browser.get('/login?next=%2Fadmin');
    expect(loginPage.text).toContain('name="next" value="/admin"');
    await browser.submit('/login?next=%2Fadmin', '/login', {
      username: account.username,
      password: account.password,
      next: '/admin',
    });
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/admin');
  });

  it.each([
    'https://evil.example/',
    '//evil.example/x',
    '/\\evil.example',
    'javascript:alert(1)',
    '/%0d%0aLocation:x',
    '/..//evil.example/phish',
    '/.//evil.example/x',
    '/%2e%2e//evil.example',
  ])('never follows next=%s off the site', async (next) => {
    // Threat: an open redirect that turns our login page into a phishing springboard.
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await browser.submit('/login', '/login', {
      username: account.username,
      password: account.password,
      next,
    });
    const res = await submitCode(browser, lastConsoleCode(site.printed));
    expect(res.headers.location).toMatch(/^\/(?!\/|\\)/);
    expect(res.headers.location).not.toContain('evil');
  });
});

describe('login throttling', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('answers 429 after 10 failed passwords for a username from one address, and lets it in after the window', async () => {
    // Threat: online password guessing against one account, without locking its owner out for good.
    const attacker = createBrowser(site.app);
    const account = await register(attacker);
    for (let i = 0; i < 10; i += 1) {
      const res = await attacker.submit('/login', '/login', {
        username: account.username,
        password: `guess number ${i}`,
      });
      expect(res.status).toBe(401);
    }
    const blocked = await attacker.submit('/login', '/login', {
      username: account.username,
      password: account.password,
    });
    expectPage(blocked, 429, /Too many failed attempts\. Wait 15 minutes/);
    expect(blocked.headers['retry-after']).toBe('900');

    site.clock.advanceMinutes(15);
    expectRedirect(await submitPassword(createBrowser(site.app), account), '/verify');
  });

  it('lets no more than 10 guesses through when they all arrive at once', async () => {
    // Threat: parallel guesses that all pass the limit check while the first is still hashing.
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const token = csrfTokenIn((await browser.get('/login')).text);
    const attempts = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        browser.agent
          .post('/login')
          .type('form')
          .send({ username: account.username, password: `parallel guess ${i}`, _csrf: token }),
      ),
    );
    const statuses = attempts.map((res) => res.status);
    expect(statuses.filter((status) => status === 401)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(20);
  });

  it('answers 429 after 10 failures from one address, whatever the usernames', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    for (let i = 0; i < 10; i += 1) {
      await browser.submit('/login', '/login', { username: `someone${i}`, password: 'guess guess' });
    }
    expectPage(await submitPassword(browser, account), 429, /Too many failed attempts/);
  });

  it('answers a sixth login code within 15 minutes with a 429 and the wait', async () => {
    const account = await register(createBrowser(site.app));
    // Past the window of the sign-up code, which counts among the account's codes too.
    site.clock.advanceMinutes(15);
    for (let i = 0; i < 5; i += 1) {
      expectRedirect(await submitPassword(createBrowser(site.app), account), '/verify');
      site.clock.advance(30_000);
    }
    const sixth = await submitPassword(createBrowser(site.app), account);
    expectPage(sixth, 429, /Too many codes requested\. You can ask for another in 13 minutes/);
    expect(sixth.headers['retry-after']).toBe(String(15 * 60 - 150));
  });

  it('records failed logins in the audit log without the password', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await browser.submit('/login', '/login', { username: account.username, password: 'secret guess 1' });
    const events = await site.audit.recent();
    expect(events[0]).toMatchObject({ type: 'login_password_failed', username: account.username });
    expect(JSON.stringify(events)).not.toContain('secret guess 1');
  });
});

/** A well-formed known-device cookie value, signed with a secret that is not this site's. */
function cookieFromAnotherSite(userId: number): string {
  let value = '';
  const res = { cookie: (_name: string, cookieValue: string) => void (value = cookieValue) };
  createKnownDevices({
    secret: 'another-secret-that-is-at-least-32-characters',
    clock: createTestClock(),
    isProduction: false,
  }).remember(res as unknown as ExpressResponse, userId);
  return value;
}

describe('login throttling: strangers cannot lock an owner out', () => {
  // Threat: anyone who knows a username sends 11 wrong passwords every 15 minutes and keeps its
  // owner out for ever; or hides behind many addresses, or many IPv6 addresses of one /64.
  let site: TestApp;
  /** How many passwords were checked (the hash compared), whatever the answer. */
  let passwordChecks: number;
  beforeEach(async () => {
    passwordChecks = 0;
    // A fast stand-in for argon2 that counts its checks: these tests send hundreds of passwords.
    const quickHasher: PasswordHasher = {
      hash: async (password) => `hash:${password}`,
      verify: async (hash, password) => {
        passwordChecks += 1;
        return hash === `hash:${password}`;
      },
    };
    site = await createTestApp({ hasher: quickHasher });
  });
  afterEach(() => site.close());

  /** A client that reaches the site through the (trusted, loopback) proxy from `address`. */
  async function clientAt(address: string, browser: Browser = createBrowser(site.app)) {
    const page = await browser.agent.get('/login').set('X-Forwarded-For', address);
    const token = csrfTokenIn(page.text);
    return (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      browser.agent
        .post('/login')
        .set({ 'X-Forwarded-For': address, ...headers })
        .type('form')
        .send({ ...fields, _csrf: token });
  }

  async function failFrom(address: string, username: string, times: number) {
    const login = await clientAt(address);
    for (let i = 0; i < times; i += 1) {
      expect((await login({ username, password: `wrong guess ${i}` })).status).toBe(401);
    }
  }

  /** 100 wrong passwords for `username` from 10 stranger addresses: the per-username limit. */
  async function strangersFail100Times(username: string) {
    for (let i = 1; i <= 10; i += 1) await failFrom(`203.0.113.${i}`, username, 10);
  }

  /** A browser that completed a full login as `account` (so it holds the known-device cookie), logged out. */
  async function browserThatLoggedInAs(account: TestAccount, browser: Browser) {
    await submitPassword(browser, account);
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
    await browser.submit('/account', '/logout');
    return browser;
  }

  const PACED = /Too many login attempts for this account right now\. Try again in 1 second\./;

  it('sends the owner her code from her own address after strangers failed 15 times on her username', async () => {
    const alice = await register(createBrowser(site.app), { username: 'alice' });
    for (const address of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) await failFrom(address, 'alice', 5);

    const owner = await clientAt('192.0.2.10');
    expectRedirect(await owner({ username: 'alice', password: alice.password }), '/verify');
  });

  it('still stops one address guessing across many usernames after its 10 failures', async () => {
    const bob = await register(createBrowser(site.app));
    const guesser = await clientAt('198.51.100.7');
    for (let i = 0; i < 10; i += 1) {
      expect((await guesser({ username: `someone${i}`, password: 'guess guess' })).status).toBe(401);
    }
    const refused = await guesser({ username: bob.username, password: bob.password });
    expectPage(refused, 429, /Too many failed attempts\. Wait 15 minutes/);
  });

  it('counts 15 IPv6 addresses in one /64 as one client', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 15; i += 1) {
      const login = await clientAt(`2001:db8:1:2::${i.toString(16)}`);
      statuses.push((await login({ username: `someone${i}`, password: 'guess guess' })).status);
    }
    expect(statuses).toEqual([...Array(10).fill(401), ...Array(5).fill(429)]);
    const neighbour = await clientAt('2001:db8:1:3::1');
    expect((await neighbour({ username: 'someone', password: 'guess guess' })).status).toBe(401);
  });

  it('lets the owner in with her known-device browser from an address a stranger there has used up', async () => {
    // Threat: one stranger behind a carrier's NAT (or an office, or one IPv6 /64) fails 10 times on
    // made-up names and so locks out everyone at that address, the account owners included.
    const aliceBrowser = createBrowser(site.app);
    const alice = await register(aliceBrowser, { username: 'alice' });
    await browserThatLoggedInAs(alice, aliceBrowser);
    const bob = await register(createBrowser(site.app), { username: 'bob' });

    await failFrom('100.64.0.1', 'made-up-1', 5);
    await failFrom('100.64.0.1', 'made-up-2', 5);
    // The address stays shut to logins without a known-device cookie for the account...
    const bobAtTheNat = await clientAt('100.64.0.1');
    expectPage(
      await bobAtTheNat({ username: 'bob', password: bob.password }),
      429,
      /Too many failed attempts/,
    );
    // ...but not to the browser that has logged in as alice before.
    const aliceAtTheNat = await clientAt('100.64.0.1', aliceBrowser);
    expectRedirect(await aliceAtTheNat({ username: 'alice', password: alice.password }), '/verify');
  });

  it('lets the owner in with her known-device browser after a stranger at her address failed 10 times on her own username', async () => {
    const aliceBrowser = createBrowser(site.app);
    const alice = await register(aliceBrowser, { username: 'alice' });
    await browserThatLoggedInAs(alice, aliceBrowser);

    await failFrom('100.64.0.1', 'alice', 10);
    const aliceAtTheNat = await clientAt('100.64.0.1', aliceBrowser);
    expectRedirect(await aliceAtTheNat({ username: 'alice', password: alice.password }), '/verify');
  });

  it('checks one password a second past 100 failures on a username; refuses addresses that failed; never locks the owner out', async () => {
    const alice = await register(createBrowser(site.app), { username: 'alice' });
    await strangersFail100Times('alice');

    const newcomer = await clientAt('198.51.100.50');
    expect((await newcomer({ username: 'alice', password: 'one more guess' })).status).toBe(401);
    site.clock.advance(1000);
    expectPage(
      await newcomer({ username: 'alice', password: 'and another' }),
      429,
      /Too many failed attempts/,
    );

    // The owner at a clean address, without the cookie, shares the one check a second with everyone.
    const owner = await clientAt('192.0.2.10');
    expectRedirect(await owner({ username: 'alice', password: alice.password }), '/verify');
    const checksSoFar = passwordChecks;
    const tooSoon = await (await clientAt('192.0.2.11'))({ username: 'alice', password: alice.password });
    expectPage(tooSoon, 429, PACED);
    expect(tooSoon.headers['retry-after']).toBe('1');
    expect(passwordChecks).toBe(checksSoFar);
    site.clock.advance(1000);
    expectRedirect(
      await (
        await clientAt('192.0.2.11')
      )({ username: 'alice', password: alice.password }),
      '/verify',
    );
  });

  it('checks at most one of 300 parallel guesses from 300 IPv6 /64s past the limit, and lets the known-device owner in at once', async () => {
    // Threat: a botnet past the per-username limit, each address guessing once, all at the same time.
    const aliceBrowser = createBrowser(site.app);
    const alice = await register(aliceBrowser, { username: 'alice' });
    await browserThatLoggedInAs(alice, aliceBrowser);
    await strangersFail100Times('alice');

    const guessers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => clientAt(`2001:db8:aa:${i.toString(16)}::1`)),
    );
    const checksBefore = passwordChecks;
    const answers = await Promise.all(
      guessers.map((guess, i) => guess({ username: 'alice', password: `parallel guess ${i}` })),
    );
    expect(passwordChecks - checksBefore).toBe(1);
    expect(answers.filter((res) => res.status === 401)).toHaveLength(1);
    const paced = answers.filter((res) => res.status === 429);
    expect(paced).toHaveLength(299);
    for (const res of paced) expectPage(res, 429, PACED);

    const owner = await clientAt('192.0.2.10', aliceBrowser);
    expectRedirect(await owner({ username: 'alice', password: alice.password }), '/verify');
  });

  it('gives the known-device cookie, HttpOnly and long-lived, after a full login', async () => {
    const browser = createBrowser(site.app);
    const alice = await register(browser, { username: 'alice' });
    await submitPassword(browser, alice);
    const signedIn = await submitCode(browser, lastConsoleCode(site.printed));
    expectRedirect(signedIn, '/account');
    const deviceCookie = setCookieHeaders(signedIn).find((cookie) => cookie.startsWith('mfa.device='));
    expect(deviceCookie).toMatch(/; HttpOnly/);
    expect(deviceCookie).toMatch(/; SameSite=Lax/);
    expect(deviceCookie).toMatch(/; Path=\//);
    expect(deviceCookie).toMatch(/; Max-Age=31536000/);
  });

  it('neither holds nor paces a browser that completed a login for the account before', async () => {
    const browser = createBrowser(site.app);
    const alice = await register(browser, { username: 'alice' });
    await browserThatLoggedInAs(alice, browser);
    await strangersFail100Times('alice');
    await failFrom('198.51.100.50', 'alice', 1); // this second's one check

    const sameBrowser = await clientAt('192.0.2.99', browser);
    expectRedirect(await sameBrowser({ username: 'alice', password: alice.password }), '/verify');

    // Another browser at a clean address waits for the next free check.
    const otherBrowser = await clientAt('192.0.2.98');
    expectPage(await otherBrowser({ username: 'alice', password: alice.password }), 429, PACED);
  });

  it.each([
    ['signed with another secret', (aliceId: number) => cookieFromAnotherSite(aliceId)],
    [
      'with her id and a made-up signature',
      (aliceId: number) => `v1.${aliceId}.${Date.parse('2026-11-21T09:00:00Z')}.${'A'.repeat(43)}`,
    ],
    ['that is not URL-encoded', () => '%'],
    ['of the wrong shape', () => 'v1.1.x.y'],
    ['that is very long', () => 'v1.'.repeat(2000)],
  ])('gives no exemption to a known-device cookie %s; the owner waits her turn', async (_, forge) => {
    const alice = await register(createBrowser(site.app), { username: 'alice' });
    await strangersFail100Times('alice');
    await failFrom('198.51.100.50', 'alice', 1); // this second's one check
    const forged = forge((await site.users.findByUsername('alice'))!.id);
    const login = await clientAt('192.0.2.10');
    const withForgedCookie = () =>
      login({ username: 'alice', password: alice.password }, { Cookie: `mfa.device=${forged}` });
    expectPage(await withForgedCookie(), 429, PACED);
    site.clock.advance(1000);
    expectRedirect(await withForgedCookie(), '/verify');
  });

  it("gives no exemption from one account's limits to another account's known device", async () => {
    const browser = createBrowser(site.app);
    const bob = await register(browser);
    await browserThatLoggedInAs(bob, browser);
    const alice = await register(createBrowser(site.app), { username: 'alice' });
    await strangersFail100Times('alice');
    await failFrom('198.51.100.50', 'alice', 1); // this second's one check

    const bobsBrowser = await clientAt('192.0.2.10', browser);
    expectPage(await bobsBrowser({ username: 'alice', password: alice.password }), 429, PACED);
    // Nor from the per-client limit: at an address used up by a stranger, bob's cookie does not open alice.
    await failFrom('100.64.0.1', 'made-up', 10);
    const bobsBrowserAtTheNat = await clientAt('100.64.0.1', browser);
    expectPage(
      await bobsBrowserAtTheNat({ username: 'alice', password: alice.password }),
      429,
      /Too many failed attempts/,
    );
  });
});
