import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/mfa/provider.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';

describe.each<Channel>(['sms', 'voice'])('the whole journey by %s', (channel) => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('registers, logs in with a code, enters the secure area with a separate code, and logs out', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'alice', channel });
    await site.grantAdmin('alice');

    expectRedirect(await submitPassword(browser, account, channel), '/verify');
    const codePage = await browser.get('/verify');
    expectPage(codePage, 200);
    expect(visibleText(codePage.text)).toContain(`•••• ${account.phone.slice(-4)}`);
    expect(visibleText(codePage.text)).toContain(channel === 'sms' ? 'text message' : 'voice call');
    expect(site.printed.at(-1)).toMatch(
      channel === 'sms' ? /^SMS to \+1 202 555 \d{4}: / : /^Voice call to /,
    );

    const wrong = await submitCode(browser, '000000' === lastConsoleCode(site.printed) ? '111111' : '000000');
    expectPage(wrong, 400, /That code is not right\. 4 attempts left\./);

    const loginCode = lastConsoleCode(site.printed, 'login');
    expectRedirect(await submitCode(browser, loginCode), '/account');

    const accountPage = await browser.get('/account');
    expectPage(accountPage, 200, /alice/);
    expect(accountPage.headers['cache-control']).toBe('no-store');
    // The first sign-in was the one that proved the number, at registration.
    expect(visibleText(accountPage.text)).toMatch(/Previous login \w{3}, \d+ \w{3} \d{4}/);

    // The secure area asks for a code of its own; the login code is refused there.
    const stepUp = await browser.get('/admin');
    expectPage(stepUp, 200, /Confirm it is you/);
    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
    expectPage(await submitCode(browser, loginCode), 400, /That code is not right/);

    const adminCode = lastConsoleCode(site.printed, 'admin');
    expectRedirect(await submitCode(browser, adminCode), '/admin');
    const admin = await browser.get('/admin');
    expectPage(admin, 200, /Secure area/);
    expect(visibleText(admin.text)).toMatch(/login succeeded/);
    expect(visibleText(admin.text)).toMatch(/code failed/);

    expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');
    expectRedirect(await browser.get('/account'), '/login?next=%2Faccount');
  });
});
