import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/mfa/provider.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { consoleCodeTo, createApiClient, createTestApiKey } from '../helpers/api.js';
import { lastConsoleCode } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import { confirmNewestLink, createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';

/**
 * The API's codes and the site's are kept apart both ways: an API code sent to a person's own
 * number is refused on every code page of the site (login, admin, settings, reset), and each of
 * those pages' codes is refused by the API. Threat: an application holding an API key getting a
 * code to someone's phone and having it typed (or typing it) where it opens their account, or the
 * other way round. The console provider's code store binds each code to its scope, and the site
 * and the API never read each other's records.
 */
describe('API codes and the site’s codes', () => {
  let mail: MailTestApp;
  let account: TestAccount;
  beforeEach(async () => {
    mail = await createMailTestApp({ env: { TRUST_PROXY: 'loopback' } });
    const browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await confirmNewestLink(mail, browser, 'rosa@example.com');
    await mail.site.grantAdmin('rosa');
    // Past the sign-up code's send window.
    mail.site.clock.advanceMinutes(16);
  });
  afterEach(() => mail.close());

  const site = () => mail.site;
  const codeOf = (scope: Scope) => lastConsoleCode(site().printed, scope);
  const signedIn = async () => {
    site().clock.advance(61_000);
    const browser = createBrowser(site().app);
    await logIn(site(), browser, account);
    return browser;
  };

  it('refuses an API code on every code page of the site, and each page’s code at the API', async () => {
    const api = createApiClient(site().app, (await createTestApiKey(site())).key);
    const sent = await api.send({ to: account.phone, label: 'login' });
    expect(sent.status).toBe(201);
    const apiCode = consoleCodeTo(site(), account.phone);

    const pages = new Map<Scope, { browser: Browser; code: string; landsOn: string }>();
    const settings = await signedIn();
    expectRedirect(await settings.submit('/account/security', '/account/security/confirm'), '/verify');
    pages.set('settings', { browser: settings, code: codeOf('settings'), landsOn: '/account/security' });

    const admin = await signedIn();
    expectRedirect(await admin.submit('/admin', '/admin/step-up'), '/verify');
    pages.set('admin', { browser: admin, code: codeOf('admin'), landsOn: '/admin' });

    const reset = createBrowser(site().app);
    site().clock.advance(61_000);
    expect((await reset.submit('/forgot', '/forgot', { identifier: 'rosa' })).status).toBe(200);
    await mail.waitForMail('rosa@example.com', 2);
    const link = linkPathIn(mail.mailTo('rosa@example.com').at(-1)!);
    expectRedirect(await reset.submit(link, link), '/verify');
    pages.set('reset', { browser: reset, code: codeOf('reset'), landsOn: '/reset/password' });

    // Last: its code is the newest "Keyhole code", the one a person would most likely mix up.
    const login = createBrowser(site().app);
    site().clock.advance(61_000);
    expectRedirect(await submitPassword(login, account), '/verify');
    pages.set('login', { browser: login, code: codeOf('login'), landsOn: '/account' });

    for (const [scope, page] of pages) {
      // A page's own code of the same digits by chance would be right there: not a test.
      const code = apiCode === page.code ? wrongFor(page.code) : apiCode;
      expectPage(await submitCode(page.browser, code), 400, /That code is not right/);

      const siteCode = page.code === apiCode ? wrongFor(apiCode) : page.code;
      const atApi = await api.check(sent.body.id, siteCode);
      expect(atApi.status, `the ${scope} code at the API`).toBe(200);
      expect(atApi.body.status).toBe('pending');
    }
    expect((await api.check(sent.body.id, apiCode)).body).toMatchObject({ status: 'approved' });
    for (const page of pages.values()) {
      expectRedirect(await submitCode(page.browser, page.code), page.landsOn);
    }
  });
});
