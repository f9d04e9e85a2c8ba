import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PasswordHasher } from '../../src/users/passwords.js';
import { createBrowser, csrfTokenIn } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';

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

  it('checks a hash for an unknown user too, so both answers take the same time', async () => {
    // Threat: timing the response to learn which usernames exist.
    site.close();
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
    expect(site.users.findByUsername(account.username)?.preferredChannel).toBe('voice');
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

  it('answers 429 after 10 failed passwords for a username, and lets the owner in after the window', async () => {
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
    const events = site.audit.recent();
    expect(events[0]).toMatchObject({ type: 'login_password_failed', username: account.username });
    expect(JSON.stringify(events)).not.toContain('secret guess 1');
  });
});
