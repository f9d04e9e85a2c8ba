import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/mfa/provider.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { lastConsoleCode } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import { confirmNewestLink, createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';

/**
 * Scopes are kept apart (issue 11): one account holds a fresh, unused code in each of the five
 * scopes at once, each waiting on its own code page, and every code is refused on every page but
 * its own; then each is accepted where it belongs.
 */
describe('every pair of scopes', () => {
  let mail: MailTestApp;
  let account: TestAccount;
  beforeEach(async () => {
    mail = await createMailTestApp({ env: { TRUST_PROXY: 'loopback' } });
    const browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await confirmNewestLink(mail, browser, 'rosa@example.com');
    await mail.site.grantAdmin('rosa');
    // Past the sign-up code's send window: the five codes below are all this account may have in one.
    mail.site.clock.advanceMinutes(16);
  });
  afterEach(() => mail.close());

  const site = () => mail.site;
  const codeOf = (scope: Scope) => lastConsoleCode(site().printed, scope);
  // Logins a minute apart, as a person's are: the login throttle paces one name's password tries.
  const signedIn = async () => {
    site().clock.advance(61_000);
    const browser = createBrowser(site().app);
    await logIn(site(), browser, account);
    return browser;
  };

  it('refuses each scope’s code on every other scope’s page, and takes it on its own', async () => {
    const pages = new Map<Scope, { browser: Browser; code: string; landsOn: string }>();

    // enrol: a new number on another signed-in browser, after its own settings code.
    // First: its settings code would otherwise void the one the settings page waits for (only
    // the newest code of a scope works).
    const phoneChange = await signedIn();
    expectRedirect(await phoneChange.submit('/account/security', '/account/security/confirm'), '/verify');
    expectRedirect(await submitCode(phoneChange, codeOf('settings')), '/account/security');
    expectRedirect(
      await phoneChange.submit('/account/security', '/account/security/phone', {
        phone: '+12025550188',
        country: 'US',
      }),
      '/verify',
    );
    pages.set('enrol', { browser: phoneChange, code: codeOf('enrol'), landsOn: '/account/security' });

    // settings: a signed-in browser confirming it is itself.
    const settings = await signedIn();
    expectRedirect(await settings.submit('/account/security', '/account/security/confirm'), '/verify');
    pages.set('settings', { browser: settings, code: codeOf('settings'), landsOn: '/account/security' });

    // admin: a third signed-in browser opening the secure area.
    const admin = await signedIn();
    expectRedirect(await admin.submit('/admin', '/admin/step-up'), '/verify');
    pages.set('admin', { browser: admin, code: codeOf('admin'), landsOn: '/admin' });

    // reset: a reset link from the mailbox, opened in a fresh browser.
    const reset = createBrowser(site().app);
    site().clock.advance(61_000);
    expect((await reset.submit('/forgot', '/forgot', { identifier: 'rosa' })).status).toBe(200);
    await mail.waitForMail('rosa@example.com', 2);
    const link = linkPathIn(mail.mailTo('rosa@example.com').at(-1)!);
    expectRedirect(await reset.submit(link, link), '/verify');
    pages.set('reset', { browser: reset, code: codeOf('reset'), landsOn: '/reset/password' });

    // login: the password step in a fresh browser (last: it must not replace another's code).
    const login = createBrowser(site().app);
    site().clock.advance(61_000);
    expectRedirect(await submitPassword(login, account), '/verify');
    pages.set('login', { browser: login, code: codeOf('login'), landsOn: '/account' });

    expect([...pages.keys()].sort()).toEqual(['admin', 'enrol', 'login', 'reset', 'settings']);
    for (const [pageScope, page] of pages) {
      for (const [codeScope, other] of pages) {
        if (codeScope === pageScope) continue;
        // A different code of the same digits by chance would be right for this page: not a test.
        const code = other.code === page.code ? wrongFor(page.code) : other.code;
        const refused = await submitCode(page.browser, code);
        expectPage(refused, 400, /That code is not right/);
      }
    }
    // Four wrong tries each, one left: every page still takes its own code. The new number last:
    // once it is the account's, a settings code sent to the old one no longer counts.
    for (const scope of ['settings', 'admin', 'reset', 'login', 'enrol'] as const) {
      const page = pages.get(scope)!;
      expectRedirect(await submitCode(page.browser, page.code), page.landsOn);
    }
  });
});
