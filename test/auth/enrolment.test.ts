import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUnprovenAccountsTask } from '../../src/auth/enrolment.js';
import { ProviderError, type MfaProvider } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import {
  fictionalPhone,
  newestOutboxCode,
  register,
  registerUnproven,
  submitCode,
  submitPassword,
  wrongFor,
} from '../helpers/flows.js';

/**
 * Sign-up proves the number (issue 11). Threats: an account registered with a stranger's number
 * (or a mistyped one) that then sends that stranger codes at every login; a number pumped with
 * sign-up codes; a code sent for one purpose accepted for another.
 */
describe('signing up proves the phone number', () => {
  let site: TestApp;
  let browser: Browser;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
  });
  afterEach(() => site.close());

  const signUpCode = () => newestOutboxCode(browser, 'sign-up');
  const accountOf = async (username: string) => (await site.users.findByUsername(username))!;

  it('goes from the form straight to a code sent to the new number, which signs the person in', async () => {
    const account = await registerUnproven(browser, { username: 'rosa' });
    const page = await browser.get('/verify');
    expectPage(page, 200, /Confirm your phone number/);
    expect(visibleText(page.text)).toContain(
      `sign-up code by text message to •••• ${account.phone.slice(-4)}`,
    );
    expect(site.printed.at(-1)).toMatch(/Keyhole sign-up code: \d{6}/);
    expect((await accountOf('rosa')).phoneVerifiedAt).toBeNull();

    expectRedirect(await submitCode(browser, await signUpCode()), '/account');
    expectPage(await browser.get('/account'), 200, /Signed in as <strong>rosa<\/strong>/);
    expect((await accountOf('rosa')).phoneVerifiedAt).toEqual(site.clock.now());
    const events = (await site.audit.recent()).map((event) => event.type);
    expect(events.slice(0, 2)).toEqual(['login_succeeded', 'phone_proven']);
  });

  it("offers to correct the number in a form that starts on the number's own country", async () => {
    await registerUnproven(browser, { username: 'rosa', phone: '+442079460000' });
    const page = await browser.get('/verify');
    expect(page.text).toMatch(/<details class="correct-number"/);
    expect(page.text).toMatch(/<option value="GB" selected>/);
    expect(page.text).not.toMatch(/<option value="US" selected>/);
  });

  it('lets no unproven account log in: its password leads to a sign-up code, never a login code', async () => {
    const account = await registerUnproven(browser, { username: 'rosa' });
    const other = createBrowser(site.app);
    expectRedirect(await submitPassword(other, account), '/verify');
    expectPage(await other.get('/verify'), 200, /Confirm your phone number/);
    expect(() => lastConsoleCode(site.printed, 'login')).toThrow(/no login code/);
    expectRedirect(await other.get('/account'), '/login?next=%2Faccount');
    // The code proves the number from that browser too.
    expectRedirect(await submitCode(other, await newestOutboxCode(other, 'sign-up')), '/account');
  });

  it('never accepts a sign-up code as a login or secure-area code', async () => {
    const account = await registerUnproven(browser, { username: 'rosa' });
    const enrolCode = await signUpCode();
    // Proven by another way meanwhile (so a login code is asked for next): the sign-up code in hand is no use.
    await site.users.markPhoneProven((await accountOf('rosa')).id, account.phone);
    const login = createBrowser(site.app);
    expectRedirect(await submitPassword(login, account), '/verify');
    const loginCode = lastConsoleCode(site.printed, 'login');
    expectPage(
      await submitCode(login, enrolCode === loginCode ? wrongFor(loginCode) : enrolCode),
      400,
      /That code is not right/,
    );
    // The account's first login, without recovery codes: it leads to their offer (issue 12).
    expectRedirect(await submitCode(login, loginCode), '/account/recovery-codes/offer');

    await site.grantAdmin('rosa');
    expectRedirect(await login.submit('/admin', '/admin/step-up'), '/verify');
    const adminCode = lastConsoleCode(site.printed, 'admin');
    expectPage(
      await submitCode(login, enrolCode === adminCode ? wrongFor(adminCode) : enrolCode),
      400,
      /That code is not right/,
    );
  });

  it('corrects a mistyped number on the code page: a code goes to the new one, the old one’s no longer works', async () => {
    const mistyped = fictionalPhone();
    const right = fictionalPhone();
    await registerUnproven(browser, { username: 'rosa', phone: mistyped });
    const codeToMistyped = await signUpCode();

    expectRedirect(
      await browser.submit('/verify', '/verify/number', { phone: right, country: 'US' }),
      '/verify',
    );
    expect(site.printed.at(-1)).toContain(`to +1 202 555 ${right.slice(-4)}`);
    const codeToRight = await signUpCode();
    expect((await accountOf('rosa')).phone).toBe(right);

    if (codeToMistyped !== codeToRight) {
      expectPage(await submitCode(browser, codeToMistyped), 400, /That code is not right/);
    }
    expectRedirect(await submitCode(browser, codeToRight), '/account');
    const proven = await accountOf('rosa');
    expect(proven.phone).toBe(right);
    expect(proven.phoneVerifiedAt).not.toBeNull();
  });

  it('never lets a code to the old number prove a corrected one, even when no new code could go out', async () => {
    // Threat: sign up with your own number, take its code, correct the number to a stranger's
    // (one that cannot get a code right now), then enter your own code.
    const strangers = fictionalPhone();
    const other = createBrowser(site.app);
    await registerUnproven(other, { username: 'tess', phone: strangers });
    for (let resend = 0; resend < 2; resend += 1) {
      site.clock.advanceMinutes(1);
      await other.submit('/verify', '/verify/resend');
    }
    await registerUnproven(browser, { username: 'mallory' });
    const ownCode = await signUpCode();

    const corrected = await browser.submit('/verify', '/verify/number', { phone: strangers, country: 'US' });
    expectRedirect(corrected, '/verify');
    expectPage(await browser.get('/verify'), 200, /No more codes can be sent to this number today/);
    const res = await submitCode(browser, ownCode);
    expect(res.status).toBe(400);
    const mallory = await accountOf('mallory');
    expect(mallory.phone).toBe(strangers);
    expect(mallory.phoneVerifiedAt).toBeNull();
    expectRedirect(await browser.get('/account'), '/login?next=%2Faccount');
  });

  it('refuses a bad corrected number with the reason, and keeps the one it had', async () => {
    const limited = await createTestApp({ env: { SMS_COUNTRIES: 'US,CA' } });
    try {
      const person = createBrowser(limited.app);
      const account = await registerUnproven(person, { username: 'rosa' });
      const bad = await person.submit('/verify', '/verify/number', { phone: '12', country: 'US' });
      expectPage(bad, 400, /Enter a valid phone number/);
      const elsewhere = await person.submit('/verify', '/verify/number', {
        phone: '+61 2 5550 1234',
        country: '',
      });
      expectPage(elsewhere, 400, /Codes cannot be sent to numbers in Australia/);
      expect((await limited.users.findByUsername('rosa'))!.phone).toBe(account.phone);
    } finally {
      await limited.close();
    }
  });

  it('sends an unproven number at most 3 sign-up codes a day, from every account together', async () => {
    const phone = fictionalPhone();
    await registerUnproven(browser, { username: 'rosa', phone });
    for (let resend = 0; resend < 2; resend += 1) {
      site.clock.advanceMinutes(1);
      expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
    }
    site.clock.advanceMinutes(1);
    const fourth = await browser.submit('/verify', '/verify/resend');
    expectPage(fourth, 429, /No more codes can be sent to this number today/);
    expect(Number(fourth.headers['retry-after'])).toBeGreaterThan(20 * 60 * 60);

    // Another sign-up with the same number gets none either.
    const second = createBrowser(site.app);
    await registerUnproven(second, { username: 'tess', phone });
    expectPage(await second.get('/verify'), 200, /No more codes can be sent to this number today/);
    expect(site.printed.filter((line) => line.includes('sign-up code'))).toHaveLength(3);
  });

  it('does not count a sign-up code that a failing provider never sent', async () => {
    // Threat: an outage (or a stranger timing sign-ups to one) using up a number's day.
    const failing: MfaProvider = {
      name: 'failing',
      channels: ['sms', 'voice'],
      send: async () => {
        throw new ProviderError('unavailable', 'failing', 'connection refused');
      },
      verify: async () => 'invalid',
    };
    const down = await createTestApp({ providers: createProviderPool([failing]) });
    try {
      const person = createBrowser(down.app);
      const phone = fictionalPhone();
      await registerUnproven(person, { username: 'rosa', phone });
      for (let resend = 0; resend < 4; resend += 1) {
        down.clock.advanceMinutes(1);
        expectPage(await person.submit('/verify', '/verify/resend'), 503);
      }
      // Five tries, nothing sent: the number still has its three codes a day.
      const allowance = await down.stores.limits.get(`enrol:codes:${phone}`);
      expect(allowance?.count ?? 0).toBe(0);
    } finally {
      await down.close();
    }
  });

  it('removes accounts that never proved their number a day after they were made, and frees the name', async () => {
    await registerUnproven(browser, { username: 'rosa' });
    await register(createBrowser(site.app), { username: 'tess' });
    const sweep = createUnprovenAccountsTask({ users: site.users, clock: site.clock });

    site.clock.advanceMinutes(23 * 60);
    expect(await sweep.runBatch()).toBe(0);
    site.clock.advanceMinutes(61);
    expect(await sweep.runBatch()).toBe(1);
    expect(await site.users.findByUsername('rosa')).toBeNull();
    expect(await site.users.findByUsername('tess')).not.toBeNull();
    // The session waiting for rosa's code leads nowhere now.
    expectRedirect(await browser.get('/verify'), '/login');
    await registerUnproven(createBrowser(site.app), { username: 'rosa' });
  });
});
