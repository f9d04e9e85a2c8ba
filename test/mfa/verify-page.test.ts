import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

describe('the code page', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    account = await register(browser, { channel: 'sms' });
    expectRedirect(await submitPassword(browser, account, 'sms'), '/verify');
  });
  afterEach(() => site.close());

  const resend = (channel?: 'sms' | 'voice') =>
    browser.submit('/verify', '/verify/resend', channel ? { channel } : {});

  it('shows where the code went, the attempts left and the resend cooldown', async () => {
    const page = await browser.get('/verify');
    const text = visibleText(page.text);
    expect(text).toContain(`We sent a 6-digit login code by text message to •••• ${account.phone.slice(-4)}`);
    expect(text).not.toContain(account.phone);
    expect(text).toContain('5 attempts left');
    expect(text).toMatch(/You can ask for a new code in 30 seconds/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toMatch(/autocomplete="one-time-code"/);
    expect(page.text).toMatch(/inputmode="numeric"/);
  });

  it('says until when the code works, to the minute, with the exact time for machines', async () => {
    const page = await browser.get('/verify');
    const sentAt = site.clock.now().getTime();
    const until = page.text.match(
      /It works until\s*<time datetime="([^"]+)" data-local-time="short">([^<]+)<\/time>/,
    );
    expect(until).not.toBeNull();
    const expiresAt = new Date(until![1]!).getTime();
    // The code's lifetime (MFA_CODE_TTL_MINUTES), counted from when it was sent.
    expect(expiresAt - sentAt).toBe(site.config.codeTtlMinutes * 60_000);
    expect(until![2]).toMatch(/^\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC$/);
    // Gone once the code no longer works.
    site.clock.advance(site.config.codeTtlMinutes * 60_000 + 1000);
    expect((await browser.get('/verify')).text).not.toContain('It works until');
  });

  it('refuses a resend during the cooldown with a 429 that says how long to wait', async () => {
    site.clock.advance(12_000);
    const res = await resend();
    expectPage(res, 429, /You can ask for another in 18 seconds/);
    expect(res.headers['retry-after']).toBe('18');
  });

  it('sends a new code after the cooldown, and the old one stops working', async () => {
    const oldCode = lastConsoleCode(site.printed);
    site.clock.advance(30_000);
    expectRedirect(await resend(), '/verify');
    expect(visibleText((await browser.get('/verify')).text)).toContain(
      'A new code is on its way by text message',
    );
    const newCode = lastConsoleCode(site.printed);
    if (oldCode !== newCode) expectPage(await submitCode(browser, oldCode), 400, /not right/);
    expectRedirect(await submitCode(browser, newCode), '/account');
  });

  it('switches to a voice call, and remembers it for the account', async () => {
    site.clock.advance(30_000);
    expectRedirect(await resend('voice'), '/verify');
    expect(site.printed.at(-1)).toMatch(/^Voice call to /);
    const page = visibleText((await browser.get('/verify')).text);
    expect(page).toContain('by voice call');
    expect((await site.users.findByUsername(account.username))!.preferredChannel).toBe('voice');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
  });

  it('accepts a pasted code with spaces or a dash', async () => {
    const code = lastConsoleCode(site.printed);
    expectRedirect(await submitCode(browser, ` ${code.slice(0, 3)} ${code.slice(3)} `), '/account');
  });

  it('asks for the right number of digits without spending an attempt', async () => {
    expectPage(await submitCode(browser, '12ab'), 400, /Enter the 6-digit code/);
    expect(visibleText((await browser.get('/verify')).text)).toContain('5 attempts left');
  });

  it('says a code has expired and offers a new one', async () => {
    site.clock.advanceMinutes(6);
    expectPage(await submitCode(browser, lastConsoleCode(site.printed)), 400, /This code has expired/);
  });

  it('kills a code after five wrong tries', async () => {
    const code = lastConsoleCode(site.printed);
    const wrong = code === '999999' ? '999998' : '999999';
    for (let i = 0; i < 4; i += 1) await submitCode(browser, wrong);
    expectPage(await submitCode(browser, wrong), 400, /Too many wrong attempts for this code/);
    const page = await browser.get('/verify');
    expect(visibleText(page.text)).toContain('This code can no longer be used');
    expect(page.text).not.toMatch(/name="code"/);
  });

  it('locks code entry with a 429 after 10 wrong codes, for every session of the account', async () => {
    for (let round = 0; round < 2; round += 1) {
      const code = lastConsoleCode(site.printed);
      const wrong = code === '999999' ? '999998' : '999999';
      for (let i = 0; i < 5; i += 1) await submitCode(browser, wrong);
      site.clock.advance(30_000);
      if (round === 0) await resend();
    }
    const locked = await resend();
    expectPage(locked, 429, /Too many wrong codes were entered for this account/);
    const page = await browser.get('/verify');
    expect(visibleText(page.text)).toMatch(/code entry is paused: try again in 14 minutes/);
    expect(page.text).not.toMatch(/name="code"/);
    expect(page.text).not.toMatch(/action="\/verify\/resend"/);

    const elsewhere = createBrowser(site.app);
    const res = await submitPassword(elsewhere, account);
    expectPage(res, 429, /Too many wrong codes/);
    expect((await site.audit.recent()).map((event) => event.type)).toContain('code_lockout');
  });

  it('refuses a sixth code in 15 minutes with a 429 and the wait (the sign-up code counts)', async () => {
    // Five so far after three resends: the sign-up code, the login code and the three.
    for (let i = 0; i < 3; i += 1) {
      site.clock.advance(30_000);
      expectRedirect(await resend(), '/verify');
    }
    site.clock.advance(30_000);
    const res = await resend();
    expectPage(res, 429, /Too many codes requested\. You can ask for another in 13 minutes/);
  });

  it('cancels by logging out', async () => {
    expectRedirect(await browser.submit('/verify', '/logout'), '/login?signedOut');
    expectRedirect(await browser.get('/verify'), '/login');
  });

  it('sends someone with no login in progress to the login page', async () => {
    expectRedirect(await createBrowser(site.app).get('/verify'), '/login');
  });
});
