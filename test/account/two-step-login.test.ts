import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { eventually } from '../helpers/eventually.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { logInRemembered, loginAfterPassword } from '../helpers/remembered.js';
import { confirmSettings, openNewestLink, securityPageText } from '../helpers/security.js';

const TWO_STEP_PATH = '/account/security/two-step';

/** Posts the switch with this page's CSRF token. */
const turnTwoStep = (browser: Browser, state: 'off' | 'on') =>
  browser.submit('/account/security', TWO_STEP_PATH, { two_step: state });

/**
 * Two-step login optional or required (MFA_POLICY; issue 12). Threats: a site that requires the
 * second step lets someone skip it (a switch left reachable, a flag set earlier); an admin's
 * account, whose password alone would open the secure area's door, without its second step; a
 * session left open used to turn it off unseen.
 */
describe('two-step login with MFA_POLICY=required (the default)', () => {
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

  it('offers no switch, and refuses one posted anyway', async () => {
    await confirmSettings(site, browser);
    expect(await securityPageText(browser)).not.toContain('Two-step login');
    expectPage(await turnTwoStep(browser, 'off'), 404);
    expect((await site.users.findByUsername('rosa'))!.twoFactorOffAt).toBeNull();
  });

  it('ignores an off flag stored earlier (a site switched back to required asks everyone)', async () => {
    const user = (await site.users.findByUsername('rosa'))!;
    await site.users.setTwoFactorOff(user.id, true);
    expectRedirect(await submitPassword(createBrowser(site.app), account), '/verify');
  });
});

describe('two-step login with MFA_POLICY=optional', () => {
  let mail: MailTestApp;
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  let userId: number;
  beforeEach(async () => {
    mail = await createMailTestApp({ env: { MFA_POLICY: 'optional' } });
    site = mail.site;
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await openNewestLink(mail, createBrowser(site.app), 'rosa@example.com');
    userId = (await site.users.findByUsername('rosa'))!.id;
    await logIn(site, browser, account);
  });
  afterEach(() => mail.close());

  const eventsOf = (type: string) =>
    eventually(async () => {
      const events = (await site.audit.forUser(userId, new Date(0))).filter((event) => event.type === type);
      expect(events.length).toBeGreaterThan(0);
      return events;
    });

  it('shows the switch, which needs a fresh settings code before it does anything', async () => {
    const text = await securityPageText(browser);
    expect(text).toContain('Two-step login On');
    expect(text).toContain('To turn two-step login off, confirm it is you first.');
    expectRedirect(await turnTwoStep(browser, 'off'), '/account/security');
    expect(await securityPageText(browser)).toContain('confirm it is you with a new code');
    expect((await site.users.findById(userId))!.twoFactorOffAt).toBeNull();
  });

  it('turned off: the password alone is a full login, audited as such; a notice goes out; remembered browsers are forgotten', async () => {
    const remembered = createBrowser(site.app);
    await logInRemembered(site, remembered, account);
    await confirmSettings(site, browser);
    expectRedirect(await turnTwoStep(browser, 'off'), '/account/security');
    const text = await securityPageText(browser);
    expect(text).toContain('Two-step login is off: your password alone logs you in.');
    expect(text).toMatch(/Two-step login Off since/);
    expect(await eventsOf('two_factor_turned_off')).toHaveLength(1);
    expect(await site.stores.rememberedBrowsers.listForUser(userId)).toEqual([]);
    const notice = await mail.waitForMail('rosa@example.com', 2);
    expect(notice.subject).toBe('Two-step login was turned off');

    const elsewhere = createBrowser(site.app);
    expectRedirect(await submitPassword(elsewhere, account), '/account');
    expectPage(await elsewhere.get('/account'), 200);
    const [login] = await eventsOf('login_succeeded');
    expect(login!.detail).toBe('by password only (two-step login turned off)');
    // A wrong password is still a wrong password.
    expectPage(
      await submitPassword(createBrowser(site.app), { ...account, password: 'not the password' }),
      401,
    );
  });

  it('turned on again: each login asks for a code, a browser remembered before included; a notice goes out', async () => {
    const remembered = createBrowser(site.app);
    await logInRemembered(site, remembered, account);
    await confirmSettings(site, browser);
    expectRedirect(await turnTwoStep(browser, 'off'), '/account/security');
    expectRedirect(await turnTwoStep(browser, 'on'), '/account/security');
    expect(await securityPageText(browser)).toContain('Two-step login is on: each login asks for a code');
    expect(await eventsOf('two_factor_turned_on')).toHaveLength(1);
    await eventually(async () =>
      expect(mail.mailTo('rosa@example.com').map((email) => email.subject)).toContain(
        'Two-step login was turned on',
      ),
    );
    expectRedirect(await submitPassword(createBrowser(site.app), account), '/verify');
    expect(await loginAfterPassword(remembered, account)).toBe('/verify');
  });

  it('answers a tampered switch with a 400 and changes nothing', async () => {
    await confirmSettings(site, browser);
    const page = await browser.get('/account/security');
    const res = await browser.agent
      .post(TWO_STEP_PATH)
      .type('form')
      .send({ two_step: 'maybe', _csrf: csrfTokenIn(page.text) });
    expectPage(res, 400, /Choose whether two-step login is on or off/);
    expect((await site.users.findById(userId))!.twoFactorOffAt).toBeNull();
  });

  describe('for an admin', () => {
    beforeEach(async () => {
      await site.grantAdmin('rosa');
    });

    it('offers no switch and refuses one posted anyway', async () => {
      await confirmSettings(site, browser);
      expect(await securityPageText(browser)).not.toContain('Two-step login');
      expectPage(await turnTwoStep(browser, 'off'), 403, /always asks for a second step/);
      expect((await site.users.findById(userId))!.twoFactorOffAt).toBeNull();
    });

    it('always asks for the second step, even with an off flag set before the account became an admin', async () => {
      await site.users.setTwoFactorOff(userId, true);
      expectRedirect(await submitPassword(createBrowser(site.app), account), '/verify');
    });
  });

  it('shows nothing of it to a visitor: the switch is behind the login', async () => {
    const visitor = createBrowser(site.app);
    const res = await visitor.submit('/login', TWO_STEP_PATH, { two_step: 'off' });
    expectRedirect(res, /^\/login\?next=/);
    expect(visibleText((await visitor.get('/login')).text)).not.toContain('Two-step');
  });
});
