import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';

/**
 * The settings step-up (issue 11): a change on /account/security takes a fresh code in the
 * `settings` scope, 5 minutes from the code and never sliding. Threats: a session left open on a
 * shared computer used to change the password or the phone; a login or admin code (from the same
 * person's phone a minute ago) replayed here, or a settings code replayed there.
 */
describe('confirming it is you before a change (the settings scope)', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'rosa' });
    await logIn(site, browser, account);
  });
  afterEach(() => site.close());

  const askForSettingsCode = async () =>
    expectRedirect(await browser.submit('/account/security', '/account/security/confirm'), '/verify');

  it('is behind the login, and offers to send a code to the account’s own number', async () => {
    expectRedirect(
      await createBrowser(site.app).get('/account/security'),
      '/login?next=%2Faccount%2Fsecurity',
    );
    const page = await browser.get('/account/security');
    expectPage(page, 200, /Security settings/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(visibleText(page.text)).toContain(`by text message to •••• ${account.phone.slice(-4)}`);

    await askForSettingsCode();
    const codePage = await browser.get('/verify');
    expectPage(codePage, 200, /Confirm it is you/);
    expect(visibleText(codePage.text)).toContain('Changes to your security settings need a new code');
    expect(site.printed.at(-1)).toMatch(/Keyhole settings code: \d{6}/);

    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'settings')), '/account/security');
    expect(visibleText((await browser.get('/account/security')).text)).toMatch(
      /You can change your settings until \d+ \w+ 2026, 10:05 UTC/,
    );
    const events = (await site.audit.recent()).map((event) => event.type);
    expect(events[0]).toBe('settings_verified');
  });

  it('lasts 5 minutes from the code, however busy the person is', async () => {
    await askForSettingsCode();
    await submitCode(browser, lastConsoleCode(site.printed, 'settings'));
    for (let minute = 0; minute < 4; minute += 1) {
      site.clock.advanceMinutes(1);
      expect((await browser.get('/account/security')).text).toContain('You can change your settings until');
    }
    site.clock.advance(60_000 - 1);
    expect((await browser.get('/account/security')).text).toContain('You can change your settings until');
    site.clock.advance(1);
    const page = await browser.get('/account/security');
    expect(page.text).not.toContain('You can change your settings until');
    expect(page.text).toContain('Send me a code');
  });

  it('never accepts a login code, and a settings code never opens the secure area', async () => {
    await site.grantAdmin('rosa');
    // A login code of the same account, fresh and unused (another browser's login).
    const other = createBrowser(site.app);
    expectRedirect(await submitPassword(other, account), '/verify');
    const loginCode = lastConsoleCode(site.printed, 'login');

    await askForSettingsCode();
    const settingsCode = lastConsoleCode(site.printed, 'settings');
    const notSettings = loginCode === settingsCode ? wrongFor(settingsCode) : loginCode;
    expectPage(await submitCode(browser, notSettings), 400, /That code is not right/);
    expectRedirect(await submitCode(browser, settingsCode), '/account/security');

    // The secure area asks for its own code; the settings code does not open it.
    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
    const adminCode = lastConsoleCode(site.printed, 'admin');
    const notAdmin = adminCode === settingsCode ? wrongFor(adminCode) : settingsCode;
    expectPage(await submitCode(browser, notAdmin), 400, /That code is not right/);
    expectRedirect(await submitCode(browser, adminCode), '/admin');
    // Each step-up keeps the other: the settings confirmation is still there.
    expect((await browser.get('/account/security')).text).toContain('You can change your settings until');

    // And the login code still works for the login it was sent for.
    expectRedirect(await submitCode(other, loginCode), '/account');
  });

  it('never takes an admin code for a settings confirmation', async () => {
    await site.grantAdmin('rosa');
    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
    const adminCode = lastConsoleCode(site.printed, 'admin');
    await askForSettingsCode();
    const settingsCode = lastConsoleCode(site.printed, 'settings');
    expectPage(
      await submitCode(browser, adminCode === settingsCode ? wrongFor(adminCode) : adminCode),
      400,
      /That code is not right/,
    );
  });

  it('can be cancelled, and a page left too long goes back to the settings', async () => {
    await askForSettingsCode();
    expectRedirect(await browser.submit('/verify', '/account/security/cancel'), '/account/security');
    expectRedirect(await browser.get('/verify'), '/account');

    await askForSettingsCode();
    site.clock.advanceMinutes(11);
    expectRedirect(await browser.get('/verify'), '/account/security');
    expectPage(await browser.get('/account/security'), 200, /That code page timed out/);
  });

  it('counts wrong step-up codes against the session: a stolen cookie ends itself, and never pauses the owner’s logins', async () => {
    // Whoever holds this session has no phone: ten wrong settings codes (two codes of five tries).
    for (let round = 0; round < 2; round += 1) {
      site.clock.advanceMinutes(1);
      await askForSettingsCode();
      for (let guess = 0; guess < 5; guess += 1) {
        const res = await submitCode(browser, wrongFor(lastConsoleCode(site.printed, 'settings')));
        if (round === 1 && guess === 4) {
          expectRedirect(res, '/login?stepUpFailed');
        } else {
          expect(res.status).toBe(400);
        }
      }
    }
    // The session is over.
    expectRedirect(await browser.get('/account/security'), '/login?next=%2Faccount%2Fsecurity');
    expect(visibleText((await browser.get('/login?stepUpFailed')).text)).toContain(
      'you were logged out after too many wrong codes',
    );
    // The owner logs in at once, with no pause: the account's own count never moved.
    const owner = createBrowser(site.app);
    await logIn(site, owner, account);
    const events = (await site.audit.recent(40)).map((event) => event.type);
    expect(events).not.toContain('code_entry_suspended');
  });
});
