import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { australianNumber, createBrowserAt, usNumber } from '../helpers/fraud.js';
import { GOOD_PASSWORD, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

// The threats: SMS pumping and toll fraud (strangers making the site pay for codes to numbers they
// profit from), and SMS bombing (many accounts on a victim's number). Fictional numbers only.

let site: TestApp | undefined;
afterEach(() => site?.close());

let nextName = 0;
async function registerAt(address: string, phone: string, username = `user${++nextName}`) {
  const res = await createBrowserAt(site!.app, address).submit('/register', '/register', {
    username,
    password: GOOD_PASSWORD,
    phone,
    channel: 'sms',
  });
  return { res, account: { username, password: GOOD_PASSWORD, phone, channel: 'sms' } as TestAccount };
}

describe('registration', () => {
  it('allows 5 new accounts per address per hour, then refuses plainly with the wait', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    for (let i = 0; i < 5; i += 1)
      expectRedirect((await registerAt('192.0.2.10', usNumber(i))).res, /^\/login/);

    const refused = (await registerAt('192.0.2.10', usNumber(5))).res;

    expectPage(
      refused,
      429,
      /No more accounts can be created from your network right now\. Try again in 60 minutes\./,
    );
    expect(refused.headers['retry-after']).toBe('3600');
    expectRedirect((await registerAt('192.0.2.11', usNumber(5))).res, /^\/login/);
    expect((await site.audit.recent())[1]).toMatchObject({ type: 'registration_refused', ip: '192.0.2.10' });
  });

  it('counts an IPv6 client by its /64', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    for (let i = 1; i <= 5; i += 1) {
      expectRedirect((await registerAt(`2001:db8:1:2::${i}`, usNumber(i))).res, /^\/login/);
    }
    expectPage((await registerAt('2001:db8:1:2:ffff::9', usNumber(9))).res, 429);
    expectRedirect((await registerAt('2001:db8:1:3::1', usNumber(9))).res, /^\/login/);
  });

  it('counts an IPv6 /48 as a whole too, at five times the limit of one /64', async () => {
    // The threat: one /48 holds 65,536 /64s, each a fresh address to the per-address limit.
    site = await createTestApp({ fraudLimits: 'defaults', env: { REGISTER_LIMIT_PER_ADDRESS_HOUR: '1' } });
    for (let i = 1; i <= 5; i += 1) {
      expectRedirect((await registerAt(`2001:db8:1:${i}::1`, usNumber(i))).res, /^\/login/);
    }

    expectPage(
      (await registerAt('2001:db8:1:6::1', usNumber(6))).res,
      429,
      /No more accounts can be created from your network right now\. Try again in 60 minutes\./,
    );
    expectRedirect((await registerAt('2001:db8:2:1::1', usNumber(6))).res, /^\/login/);
  });

  it('gives the place back when no account was made (a taken username)', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    expectRedirect((await registerAt('192.0.2.10', usNumber(0), 'taken')).res, /^\/login/);
    expectPage((await registerAt('192.0.2.10', usNumber(1), 'taken')).res, 409);
    for (let i = 2; i < 6; i += 1)
      expectRedirect((await registerAt('192.0.2.10', usNumber(i))).res, /^\/login/);
  });

  it('allows at most 3 accounts per phone number, whatever the address', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    const shared = usNumber(50);
    for (let i = 0; i < 3; i += 1)
      expectRedirect((await registerAt(`192.0.2.${20 + i}`, shared)).res, /^\/login/);

    const fourth = await registerAt('192.0.2.30', shared, 'fourth');

    expectPage(
      fourth.res,
      400,
      /This phone number cannot be used for another account\. Use a different number\./,
    );
    expect(await site.users.findByUsername('fourth')).toBeNull();
  });

  it('refuses a number outside SMS_COUNTRIES, naming its country, and VoIP numbers', async () => {
    site = await createTestApp({ env: { SMS_COUNTRIES: 'US,GB' } });

    expectPage(
      (await registerAt('192.0.2.10', australianNumber(1), 'roo')).res,
      400,
      /Codes cannot be sent to numbers in Australia from this site\. Use a number from another country\./,
    );
    // libphonenumber's own example of a UK VoIP number.
    expectPage(
      (await registerAt('192.0.2.10', '+445612345678', 'voip')).res,
      400,
      /Codes cannot be sent to internet \(VoIP\) numbers\. Use a mobile or landline number\./,
    );
    expect(await site.users.findByUsername('roo')).toBeNull();
    expect(await site.users.findByUsername('voip')).toBeNull();
  });

  it('refuses nothing in record mode, and notes what it would have refused', async () => {
    site = await createTestApp({
      fraudLimits: 'defaults',
      env: { FRAUD_GUARD: 'record', SMS_COUNTRIES: 'US' },
    });
    for (let i = 0; i < 6; i += 1)
      expectRedirect((await registerAt('192.0.2.10', usNumber(i))).res, /^\/login/);
    expectRedirect((await registerAt('192.0.2.10', australianNumber(1))).res, /^\/login/);

    const flagged = (await site.audit.recent()).filter((event) => event.type === 'registration_flagged');
    expect(flagged.map((event) => event.detail!.split(' (')[0])).toEqual([
      'new accounts per address in an hour',
      'country not in SMS_COUNTRIES',
      'new accounts per address in an hour',
    ]);
  });
});

describe('a refused send', () => {
  it('tells the person plainly that no code can be sent now and when to try again, never which limit; the logs say which', async () => {
    const logLines: string[] = [];
    site = await createTestApp({ fraudLimits: 'defaults', logLines, logLevel: 'warn' });
    const shared = usNumber(60);
    const accounts = [];
    for (let i = 0; i < 3; i += 1) accounts.push((await registerAt(`192.0.2.${40 + i}`, shared)).account);
    // The owner completes a code, so neither the budget nor the breaker is what stops the fourth.
    const owner = createBrowserAt(site.app, '192.0.2.40');
    await submitPassword(owner, accounts[0]!);
    expectRedirect(await submitCode(owner, lastConsoleCode(site.printed)), '/account');
    await submitPassword(createBrowserAt(site.app, '192.0.2.41'), accounts[1]!);
    await submitPassword(createBrowserAt(site.app, '192.0.2.42'), accounts[2]!);

    // Past the account's own resend cooldown, so only the per-number limit can refuse.
    site.clock.advance(31_000);
    const printed = site.printed.length;
    const refused = await submitPassword(createBrowserAt(site.app, '192.0.2.43'), accounts[1]!);

    expectPage(refused, 429);
    expect(visibleText(refused.text)).toContain('No code can be sent right now. Try again in 10 minutes.');
    expect(visibleText(refused.text)).not.toMatch(/number|address|country|budget|breaker/i);
    expect(refused.headers['retry-after']).toBe(String(600 - 31));
    expect(site.printed).toHaveLength(printed);
    const audited = (await site.audit.recent()).find((event) => event.type === 'code_send_refused')!;
    expect(audited.detail).toMatch(
      /^codes per number in 10 minutes \(4 of 3\); login code by text message to •••• 0160 in US$/,
    );
    const logged = logLines.map((line) => JSON.parse(line)).find((entry) => entry.rule === 'number_10min');
    expect(logged).toMatchObject({ level: 40, country: 'US', address: '192.0.2.43' });
  });

  it('on the code page, keeps the person on it with the same plain words', async () => {
    site = await createTestApp({ fraudLimits: 'defaults', env: { SEND_LIMIT_PER_NUMBER_10MIN: '1' } });
    const { account } = await registerAt('192.0.2.10', usNumber(70));
    const browser = createBrowserAt(site.app, '192.0.2.10');
    await submitPassword(browser, account);
    site.clock.advance(31_000);

    const resend = await browser.submit('/verify', '/verify/resend');

    expectPage(resend, 429);
    expect(visibleText(resend.text)).toContain('No code can be sent right now. Try again in 10 minutes.');
    expect(resend.text).toMatch(/name="code"/);
  });
});

describe('strangers who know a number', () => {
  it("cannot lock the number's owner out: a stranger's account on it does not use up the owner's codes", async () => {
    // The attack: register an account with someone's number (3 accounts may share one) and log
    // in until the number's 10 codes a day are gone; its owner then got no code for a day.
    site = await createTestApp({ fraudLimits: 'defaults' });
    const shared = usNumber(7);
    const { account: owner } = await registerAt('192.0.2.1', shared, 'owner');
    const ownerBrowser = createBrowserAt(site.app, '192.0.2.1');
    await submitPassword(ownerBrowser, owner);
    expectRedirect(await submitCode(ownerBrowser, lastConsoleCode(site.printed)), '/account');
    site.clock.advanceMinutes(11);
    const { account: stranger } = await registerAt('198.51.100.9', shared, 'stranger');

    const strangerStatuses: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      strangerStatuses.push(
        (await submitPassword(createBrowserAt(site.app, '198.51.100.9'), stranger)).status,
      );
      site.clock.advanceMinutes(4);
    }
    // The number's common allowance holds for strangers: 3 in 10 minutes, 10 in a day.
    expect(strangerStatuses.filter((status) => status === 303)).toHaveLength(9);
    expect(strangerStatuses.at(-1)).toBe(429);

    const again = createBrowserAt(site.app, '192.0.2.1');
    expectRedirect(await submitPassword(again, owner), '/verify');
    expectRedirect(await submitCode(again, lastConsoleCode(site.printed)), '/account');
  });

  it("cannot pause a country's new users with one account", async () => {
    // The attack: one account, one number, four logins in two minutes paused codes to every new
    // number of the country for an hour.
    site = await createTestApp({ fraudLimits: 'defaults' });
    const { account: evil } = await registerAt('198.51.100.9', usNumber(30), 'evil');
    for (let i = 0; i < 4; i += 1) {
      await submitPassword(createBrowserAt(site.app, '198.51.100.9'), evil);
      site.clock.advance(31_000);
    }

    const { account: newcomer } = await registerAt('203.0.113.50', usNumber(31), 'newcomer');
    const browser = createBrowserAt(site.app, '203.0.113.50');

    expectRedirect(await submitPassword(browser, newcomer), '/verify');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
    expect((await site.audit.recent()).some((event) => event.type === 'sending_paused')).toBe(false);
  });
});

describe('the Sending section of /admin', () => {
  it('shows per country the codes sent and verified and their ratio, paused countries, and the budget, with a banner once it is spent', async () => {
    const logLines: string[] = [];
    site = await createTestApp({
      logLines,
      logLevel: 'warn',
      env: { SEND_BUDGET_PER_DAY: '5', SEND_BREAKER_MIN_PER_DAY: '20' },
    });
    const { account: ada } = await registerAt('192.0.2.10', usNumber(80), 'ada');
    await site.grantAdmin('ada');
    const admin = createBrowserAt(site.app, '192.0.2.10');
    await submitPassword(admin, ada);
    expectRedirect(await submitCode(admin, lastConsoleCode(site.printed)), '/account');
    // Four strangers with new Australian numbers: the fourth trips the breaker.
    for (let i = 0; i < 4; i += 1) {
      const { account } = await registerAt(`198.51.100.${i + 1}`, australianNumber(i));
      await submitPassword(createBrowserAt(site.app, `198.51.100.${i + 1}`), account);
    }
    expectRedirect(await admin.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(admin, lastConsoleCode(site.printed, 'admin')), '/admin');

    const page = visibleText((await admin.get('/admin')).text);

    expect(page).toContain(
      'Today’s send budget is spent: 5 of 5 codes. Until midnight UTC, only numbers that completed a code in the last 30 days get codes, up to 10.',
    );
    expect(page).toContain('Sending Daily budget: 5 of 5 codes spent today');
    expect(page).toContain(
      'Codes to never-verified numbers are paused for: Australia until 21 Nov 2026, 11:00 UTC',
    );
    // Country, codes sent, codes verified, verified per sent, refused; the busiest first.
    expect(page).toContain(
      'Country Codes sent Codes verified Verified per sent Refused Australia (AU) paused 3 0 0% 1 United States (US) 2 2 100% 0',
    );
    expect(page).toContain('Refused in the last 24 hours, by rule conversion breaker: 1');
    const errors = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level >= 50);
    expect(errors.map((entry) => entry.msg)).toEqual([
      expect.stringMatching(/^daily send budget \(SEND_BUDGET_PER_DAY\) is spent/),
    ]);
  });
});
