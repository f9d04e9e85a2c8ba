import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MFA_RULES } from '../../src/mfa/service.js';
import { createBrowser, csrfTokenIn } from '../helpers/agent.js';
import {
  consoleCodesPrinted,
  createTestApp,
  lastConsoleCode,
  type TestApp,
} from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';

// Threat: someone who knows the password (or the owner, impatient) logs in again and again; each
// login is a new session, and used to send a new code at once without voiding the one before.
describe('logging in again while a code is on its way', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  const codesPrinted = () => consoleCodesPrinted(site.printed);

  it('sends one code for five logins within the cooldown, and every login waits for that code', async () => {
    const account = await register(createBrowser(site.app));
    const browsers = Array.from({ length: 5 }, () => createBrowser(site.app));
    for (const browser of browsers) expectRedirect(await submitPassword(browser, account), '/verify');
    expect(codesPrinted()).toBe(1);

    const later = await browsers[4]!.get('/verify');
    expectPage(later, 200, /A code was sent a moment ago: enter it here/);
    expectRedirect(await submitCode(browsers[4]!, lastConsoleCode(site.printed)), '/account');
  });

  it('lets the code be used once only, whichever of those sessions enters it', async () => {
    const account = await register(createBrowser(site.app));
    const first = createBrowser(site.app);
    const second = createBrowser(site.app);
    await submitPassword(first, account);
    await submitPassword(second, account);
    const code = lastConsoleCode(site.printed);
    expectRedirect(await submitCode(first, code), '/account');
    const again = await submitCode(second, code);
    expectPage(again, 400, /This code has already been used/);
  });

  it('voids the code of the earlier login when a later login sends a new one', async () => {
    const account = await register(createBrowser(site.app));
    const first = createBrowser(site.app);
    await submitPassword(first, account);
    const firstCode = lastConsoleCode(site.printed);

    site.clock.advance(DEFAULT_MFA_RULES.resendCooldownMs);
    const second = createBrowser(site.app);
    await submitPassword(second, account);
    expect(codesPrinted()).toBe(2);

    const refused = await submitCode(first, firstCode);
    expectPage(refused, 400, /A newer code was sent since this one/);
    expectRedirect(await submitCode(second, lastConsoleCode(site.printed)), '/account');
  });

  it('sends the next login its code at once once the last code was used', async () => {
    const account = await register(createBrowser(site.app));
    const browser = createBrowser(site.app);
    await submitPassword(browser, account);
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
    await browser.submit('/account', '/logout');

    await submitPassword(browser, account);
    expect(codesPrinted()).toBe(2);
    expect(visibleText((await browser.get('/verify')).text)).toMatch(/We sent a 6-digit login code/);
  });
  it('takes a "Log in" clicked twice: both submissions lead to the code page, one code is sent', async () => {
    const account = await register(createBrowser(site.app));
    const browser = createBrowser(site.app);
    const token = csrfTokenIn((await browser.get('/login')).text);
    const post = () =>
      browser.agent
        .post('/login')
        .type('form')
        .send({ username: account.username, password: account.password, _csrf: token });
    const [first, second] = await Promise.all([post(), post()]);
    expectRedirect(first, '/verify');
    expectRedirect(second, '/verify');
    expect(codesPrinted()).toBe(1);
  });
});
