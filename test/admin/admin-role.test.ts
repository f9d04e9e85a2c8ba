import type { Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAdminCommand } from '../../src/admin/command.js';
import type { MfaProvider } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { createBrowser, csrfTokenIn, type Browser, type Response } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

async function logIn(site: TestApp, browser: Browser, account: TestAccount) {
  expectRedirect(await submitPassword(browser, account), '/verify');
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
}

/** The operator's `npm run admin -- ...`, run on the site's own database. */
function operator(site: TestApp, ...args: string[]) {
  return runAdminCommand(args, {
    users: site.users,
    audit: site.audit,
    adminUsernames: site.config.adminUsernames,
    databaseName: site.databasePath,
    ceiling: site.ceiling,
  });
}

describe('a name listed in ADMIN_USERNAMES before anyone registered it', () => {
  // Threat: on a fresh site, a stranger registers the admin's name (in another case or width)
  // before the admin does, and receives the secure area's code on their own phone.
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp({ env: { ADMIN_USERNAMES: 'alice' } });
  });
  afterEach(() => site.close());

  it.each(['alice', 'ALICE', 'Alice', 'ａｌｉｃｅ'])(
    'gives no admin rights to whoever registers it as %j',
    async (username) => {
      const stranger = createBrowser(site.app);
      const account = await register(stranger, { username });
      await logIn(site, stranger, account);

      const accountPage = await stranger.get('/account');
      expectPage(accountPage, 200);
      expect(visibleText(accountPage.text)).not.toContain('Go to the secure area');
      expectPage(await stranger.get('/admin'), 403, /for administrators only/);
      expect(await site.users.listAdmins()).toEqual([]);
    },
  );
});

describe('the admin role, granted and revoked by the operator', () => {
  let site: TestApp;
  let browser: Browser;
  let bob: TestAccount;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    bob = await register(browser, { username: 'bob' });
    await register(createBrowser(site.app), { username: 'carol' });
    await logIn(site, browser, bob);
  });
  afterEach(() => site.close());

  it('opens the secure area from the next page after a grant, and closes it again after a revoke', async () => {
    expectPage(await browser.get('/admin'), 403);

    expect(await operator(site, 'grant', 'bob')).toEqual({
      output: 'bob is now an admin: the secure area opens for them from their next page load.',
      exitCode: 0,
    });
    // No new login needed: the account is read again on every request.
    expect(visibleText((await browser.get('/account')).text)).toContain('Go to the secure area');
    expectPage(await browser.get('/admin'), 200, /Confirm it is you/);
    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'admin')), '/admin');

    // The secure area lists the role as the database holds it, and who changed it.
    const secureArea = visibleText((await browser.get('/admin')).text);
    expect(secureArea).toMatch(/\bbob admin\b/);
    expect(secureArea).toMatch(/\bcarol\b/);
    expect(secureArea).not.toMatch(/\bcarol admin\b/);
    expect(secureArea).toMatch(/admin granted bob — by the operator command \(npm run admin\)/);

    expect((await operator(site, 'revoke', 'bob')).exitCode).toBe(0);
    // Even with the secure area's own code still fresh, the role is what counts.
    expectPage(await browser.get('/admin'), 403, /for administrators only/);
    expect(visibleText((await browser.get('/account')).text)).not.toContain('Go to the secure area');
  });

  it('tells a signed-in non-admin, outside production, the exact command that makes them an admin', async () => {
    const page = visibleText((await browser.get('/account')).text);
    expect(page).toContain('Only admins can enter it, and this account is not one.');
    expect(page).toContain('npm run admin -- grant bob');

    await site.grantAdmin('bob');
    expect(visibleText((await browser.get('/account')).text)).not.toContain('npm run admin');
  });
});

/**
 * A browser behind a TLS-terminating proxy on loopback, as a production site sees it. Its cookies
 * are Secure, which supertest's own cookie jar keeps to https, so this one carries them itself.
 */
function createProxiedHttpsBrowser(app: Express): Browser {
  const cookies = new Map<string, string>();
  const remember = (res: Response) => {
    for (const header of setCookieHeaders(res)) {
      const pair = header.split(';')[0]!;
      const name = pair.slice(0, pair.indexOf('='));
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    return res;
  };
  const headers = () => ({
    'X-Forwarded-Proto': 'https',
    Cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; '),
  });
  const get = async (path: string) => remember(await request(app).get(path).set(headers()));
  return {
    agent: request.agent(app),
    get,
    cookie: (name) => (cookies.has(name) ? `${name}=${cookies.get(name)}` : undefined),
    async submit(pagePath, action, fields = {}) {
      const page = await get(pagePath);
      return remember(
        await request(app)
          .post(action)
          .set(headers())
          .type('form')
          .send({ ...fields, _csrf: csrfTokenIn(page.text) }),
      );
    },
  };
}

describe('the account page in production', () => {
  it('shows no operator command to a non-admin', async () => {
    const SCRIPTED_CODE = '246810';
    const scripted: MfaProvider = {
      name: 'scripted',
      channels: ['sms', 'voice'],
      send: async () => ({ handle: 'scripted' }),
      verify: async ({ code }) => (code === SCRIPTED_CODE ? 'valid' : 'invalid'),
    };
    const production = await createTestApp({
      env: PRODUCTION_ENV,
      providers: createProviderPool([scripted]),
    });
    try {
      const browser = createProxiedHttpsBrowser(production.app);
      const dave = await register(browser, { username: 'dave' }, { enrolCode: () => SCRIPTED_CODE });
      expectRedirect(await submitPassword(browser, dave), '/verify');
      expectRedirect(await submitCode(browser, SCRIPTED_CODE), '/account');

      const page = await browser.get('/account');
      expectPage(page, 200, /Your account/);
      expect(visibleText(page.text)).toContain('Signed in as dave');
      expect(visibleText(page.text)).not.toContain('npm run admin');
      expect(visibleText(page.text)).not.toContain('Go to the secure area');
    } finally {
      await production.close();
    }
  });
});
