import { afterEach, describe, expect, it } from 'vitest';
import { formatPhoneForDisplay } from '../../src/users/phone.js';
import type { Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { australianNumber, createBrowserAt, usNumber } from '../helpers/fraud.js';
import { GOOD_PASSWORD, register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';

// The threats: SMS pumping and toll fraud (strangers making the site pay for codes to numbers they
// profit from), and SMS bombing (many accounts on a victim's number). Fictional numbers only.

let site: TestApp | undefined;
afterEach(() => site?.close());

/** A new account goes from the form straight to the code page, for the code that proves its number. */
const SIGN_UP_CODE_PAGE = '/verify';

let nextName = 0;
async function registerAt(
  address: string,
  phone: string,
  username = `user${++nextName}`,
  browser: Browser = createBrowserAt(site!.app, address),
) {
  const res = await browser.submit('/register', '/register', {
    username,
    password: GOOD_PASSWORD,
    phone,
    channel: 'sms',
  });
  return { res, account: { username, password: GOOD_PASSWORD, phone, channel: 'sms' } as TestAccount };
}

/** What the console provider printed for `phone`, oldest first. */
const printedTo = (phone: string) =>
  site!.printed.filter((line) => line.includes(` to ${formatPhoneForDisplay(phone)}: `));

/** The newest sign-up code sent to `phone`. */
function signUpCodeTo(phone: string): string {
  const code = printedTo(phone)
    .at(-1)
    ?.match(/: Keyhole sign-up code: (\d+) /)?.[1];
  if (!code) throw new Error(`no sign-up code was sent to ${phone}`);
  return code;
}

/**
 * A sign-up from `address` whose owner proves the number with the sign-up code (one code to the
 * number, counted like any other); the browser is then logged out and forgotten.
 */
async function signUpAt(address: string, phone: string, username = `user${++nextName}`) {
  return register(
    createBrowserAt(site!.app, address),
    { username, phone, channel: 'sms' },
    { enrolCode: () => signUpCodeTo(phone) },
  );
}

describe('registration', () => {
  it('allows 5 new accounts per address per hour, then refuses plainly with the wait', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    for (let i = 0; i < 5; i += 1)
      expectRedirect((await registerAt('192.0.2.10', usNumber(i))).res, SIGN_UP_CODE_PAGE);

    const refused = (await registerAt('192.0.2.10', usNumber(5))).res;

    expectPage(
      refused,
      429,
      /No more accounts can be created from your network right now\. Try again in 60 minutes\./,
    );
    expect(refused.headers['retry-after']).toBe('3600');
    expectRedirect((await registerAt('192.0.2.11', usNumber(5))).res, SIGN_UP_CODE_PAGE);
    // Newest first: the sign-up from the other address made its account and sent its sign-up code.
    expect((await site.audit.recent()).slice(0, 3)).toMatchObject([
      { type: 'code_sent', ip: '192.0.2.11', detail: expect.stringMatching(/^enrol code/) },
      { type: 'account_created', ip: '192.0.2.11' },
      { type: 'registration_refused', ip: '192.0.2.10' },
    ]);
  });

  it('counts an IPv6 client by its /64', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    for (let i = 1; i <= 5; i += 1) {
      expectRedirect((await registerAt(`2001:db8:1:2::${i}`, usNumber(i))).res, SIGN_UP_CODE_PAGE);
    }
    expectPage((await registerAt('2001:db8:1:2:ffff::9', usNumber(9))).res, 429);
    expectRedirect((await registerAt('2001:db8:1:3::1', usNumber(9))).res, SIGN_UP_CODE_PAGE);
  });

  it('counts an IPv6 /48 as a whole too, at five times the limit of one /64', async () => {
    // The threat: one /48 holds 65,536 /64s, each a fresh address to the per-address limit.
    site = await createTestApp({ fraudLimits: 'defaults', env: { REGISTER_LIMIT_PER_ADDRESS_HOUR: '1' } });
    for (let i = 1; i <= 5; i += 1) {
      expectRedirect((await registerAt(`2001:db8:1:${i}::1`, usNumber(i))).res, SIGN_UP_CODE_PAGE);
    }

    expectPage(
      (await registerAt('2001:db8:1:6::1', usNumber(6))).res,
      429,
      /No more accounts can be created from your network right now\. Try again in 60 minutes\./,
    );
    expectRedirect((await registerAt('2001:db8:2:1::1', usNumber(6))).res, SIGN_UP_CODE_PAGE);
  });

  it('gives the place back when no account was made (a taken username)', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    expectRedirect((await registerAt('192.0.2.10', usNumber(0), 'taken')).res, SIGN_UP_CODE_PAGE);
    expectPage((await registerAt('192.0.2.10', usNumber(1), 'taken')).res, 409);
    for (let i = 2; i < 6; i += 1)
      expectRedirect((await registerAt('192.0.2.10', usNumber(i))).res, SIGN_UP_CODE_PAGE);
  });

  it('allows at most 3 accounts per phone number, whatever the address', async () => {
    site = await createTestApp({ fraudLimits: 'defaults' });
    const shared = usNumber(50);
    // Accounts that proved the number count (an unproven one is a stranger's sign-up, maybe).
    for (let i = 0; i < 3; i += 1) await signUpAt(`192.0.2.${20 + i}`, shared);

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
      expectRedirect((await registerAt('192.0.2.10', usNumber(i))).res, SIGN_UP_CODE_PAGE);
    expectRedirect((await registerAt('192.0.2.10', australianNumber(1))).res, SIGN_UP_CODE_PAGE);

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
    const phone = usNumber(60);
    // The sign-up code proved the number, so neither the budget nor the breaker is what stops a
    // code to it. That code went out before the account held the number, so it counted in the
    // number's common allowance; the account's own (3 codes in 10 minutes) starts with the logins.
    const account = await signUpAt('192.0.2.40', phone);
    expect(printedTo(phone)).toEqual([expect.stringContaining(': Keyhole sign-up code: ')]);
    for (let i = 0; i < 3; i += 1) {
      expectRedirect(
        await submitPassword(createBrowserAt(site.app, `192.0.2.${40 + i}`), account),
        '/verify',
      );
      // Past the account's own resend cooldown, so only the per-number limit can refuse.
      site.clock.advance(31_000);
    }
    expect(printedTo(phone).filter((line) => line.includes(': Keyhole code: '))).toHaveLength(3);
    const printed = site.printed.length;
    const refused = await submitPassword(createBrowserAt(site.app, '192.0.2.43'), account);

    expectPage(refused, 429);
    // The account's 10-minute window began with its first login code, 3 × 31 seconds ago.
    expect(visibleText(refused.text)).toContain('No code can be sent right now. Try again in 9 minutes.');
    expect(visibleText(refused.text)).not.toMatch(/number|address|country|budget|breaker/i);
    expect(refused.headers['retry-after']).toBe(String(600 - 3 * 31));
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
    // Its sign-up code counted in the number's common allowance; the login code is the account's one.
    const account = await signUpAt('192.0.2.10', usNumber(70));
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
    // in until the number's codes are gone; its owner then got no code for a day. The stranger's
    // account never proves the number, so each of its passwords asks for a sign-up code, which
    // counts in the number's common allowance (3 in 10 minutes) and in the sign-up codes an
    // unproven number may get (3 a day, from every account together).
    site = await createTestApp({ fraudLimits: 'defaults' });
    const shared = usNumber(7);
    const owner = await signUpAt('192.0.2.1', shared, 'owner');
    const { res, account: stranger } = await registerAt('198.51.100.9', shared, 'stranger');
    expectRedirect(res, SIGN_UP_CODE_PAGE);

    const strangerBrowsers: Browser[] = [];
    const strangerAnswers: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const strangerBrowser = createBrowserAt(site.app, '198.51.100.9');
      strangerBrowsers.push(strangerBrowser);
      const answer = await submitPassword(strangerBrowser, stranger);
      strangerAnswers.push(`${answer.status} ${answer.headers.location}`);
      // Past the resend cooldown, so each password could send a code.
      site.clock.advance(31_000);
    }
    // Never a login code: each password leads to the sign-up code page.
    expect(strangerAnswers).toEqual(Array(12).fill(`303 ${SIGN_UP_CODE_PAGE}`));
    // Three codes reached the number in all: the owner's sign-up code, the stranger's and one
    // more; the other passwords found the number's sign-up codes of the day spent.
    expect(printedTo(shared)).toEqual(Array(3).fill(expect.stringContaining(': Keyhole sign-up code: ')));
    expectPage(
      await strangerBrowsers.at(-1)!.get('/verify'),
      200,
      /No more codes can be sent to this number today/,
    );

    // The number's common allowance for these 10 minutes is spent (3 of 3), yet the owner, who
    // proved the number, gets her login code from an allowance of her own.
    const again = createBrowserAt(site.app, '192.0.2.1');
    expectRedirect(await submitPassword(again, owner), '/verify');
    expectRedirect(await submitCode(again, lastConsoleCode(site.printed)), '/account');
  });

  it("cannot pause a country's new users with one account", async () => {
    // The attack: one account, one number, four logins in two minutes paused codes to every new
    // number of the country for an hour. The account never proves its number: its sign-up code
    // and each password's new one go to a never-verified number, which the breaker counts.
    site = await createTestApp({ fraudLimits: 'defaults' });
    const evilPhone = usNumber(30);
    const { res, account: evil } = await registerAt('198.51.100.9', evilPhone, 'evil');
    expectRedirect(res, SIGN_UP_CODE_PAGE);
    for (let i = 0; i < 4; i += 1) {
      site.clock.advance(31_000);
      await submitPassword(createBrowserAt(site.app, '198.51.100.9'), evil);
    }
    // The sign-up and two of the passwords got a code; then the number's 3 sign-up codes a day were spent.
    expect(printedTo(evilPhone)).toHaveLength(3);

    // The newcomer's sign-up code goes out and proves the number; then a login code, as ever.
    const newcomer = await signUpAt('203.0.113.50', usNumber(31), 'newcomer');
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
    const admin = createBrowserAt(site.app, '192.0.2.10');
    const ada = usNumber(80);
    expectRedirect((await registerAt('192.0.2.10', ada, 'ada', admin)).res, SIGN_UP_CODE_PAGE);
    await site.grantAdmin('ada');
    // The sign-up code signs ada in: one US code sent and verified.
    expectRedirect(await submitCode(admin, signUpCodeTo(ada)), '/account');
    // Four strangers sign up with new Australian numbers, each sign-up sending a code to its
    // never-verified number: the fourth trips the breaker.
    for (let i = 0; i < 4; i += 1) {
      expectRedirect((await registerAt(`198.51.100.${i + 1}`, australianNumber(i))).res, SIGN_UP_CODE_PAGE);
    }
    expect(printedTo(australianNumber(3))).toEqual([]);
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
