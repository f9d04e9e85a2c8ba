import { afterEach, describe, expect, it } from 'vitest';
import { NEW_NUMBERS_PER_ACCOUNT_PER_DAY } from '../../src/account/phone-change.js';
import { ProviderError, type MfaProvider } from '../../src/mfa/provider.js';
import { createConsoleProvider } from '../../src/mfa/providers/console.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { createCodeTexts } from '../../src/mfa/sms-text.js';
import { SITE_NAME } from '../../src/site.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { consoleCodesPrinted, lastConsoleCode } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import {
  fictionalPhone,
  logIn,
  register,
  submitCode,
  submitPassword,
  wrongFor,
  type TestAccount,
} from '../helpers/flows.js';
import { createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, openNewestLink, securityPageText } from '../helpers/security.js';
import type { TestAppOptions } from '../helpers/create-test-app.js';

/**
 * Changing the phone number on /account/security (issue 11). Threats: a hijacked session moves
 * the account's codes to the attacker's phone; a code to the OLD number (a login or settings
 * code, which the hijacker may have) is taken as proof of the new one; the change is made long
 * after the confirmation, by whoever sits at the computer later; the form is used to send paid
 * codes to numbers the site would never register (other countries, VoIP, one number for many).
 */
describe('POST /account/security/phone', () => {
  let mail: MailTestApp;
  let browser: Browser;
  let account: TestAccount;
  afterEach(() => mail.close());

  /** `beforeSignUp` sees the site before rosa registers (to bind a scripted provider to it). */
  async function start(options: TestAppOptions = {}, beforeSignUp?: (site: MailTestApp['site']) => void) {
    mail = await createMailTestApp(options);
    beforeSignUp?.(mail.site);
    browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await openNewestLink(mail, createBrowser(mail.site.app), 'rosa@example.com');
    await logIn(mail.site, browser, account);
  }
  const changePhone = (phone: string, target = browser) =>
    target.submit('/account/security', '/account/security/phone', { phone });
  const rosa = async () => (await mail.site.users.findByUsername('rosa'))!;

  it('changes the number only after the code sent to the new one; a code to the old one never proves it', async () => {
    await start();
    await confirmSettings(mail.site, browser);
    const newPhone = fictionalPhone();
    expectRedirect(await changePhone(newPhone), '/verify');
    const codePage = await browser.get('/verify');
    expectPage(codePage, 200, /Confirm your new number/);
    expect(visibleText(codePage.text)).toContain(`to •••• ${newPhone.slice(-4)}`);
    // The code went to the new number, nowhere else.
    expect(mail.site.printed.at(-1)).toMatch(/^SMS to \+1 202 555 \d{4}: Keyhole sign-up code: \d{6}/);
    expect(mail.site.printed.at(-1)).toContain(newPhone.slice(-4));
    const newNumberCode = lastConsoleCode(mail.site.printed, 'enrol');
    // Until then the account keeps its number, and the page says a code is on its way.
    expect((await rosa()).phone).toBe(account.phone);
    expect(await securityPageText(browser)).toContain(
      `A code is on its way to your new number •••• ${newPhone.slice(-4)}`,
    );

    // A fresh login code to the OLD number (another browser's login): no proof of the new one.
    expectRedirect(await submitPassword(createBrowser(mail.site.app), account), '/verify');
    const oldNumberCode = lastConsoleCode(mail.site.printed, 'login');
    const notNew = oldNumberCode === newNumberCode ? wrongFor(newNumberCode) : oldNumberCode;
    expectPage(await submitCode(browser, notNew), 400, /That code is not right/);
    expect((await rosa()).phone).toBe(account.phone);

    expectRedirect(await submitCode(browser, newNumberCode), '/account/security');
    const page = await securityPageText(browser);
    expect(page).toContain(`Your phone number is now •••• ${newPhone.slice(-4)}`);
    expect(page).toContain('Phone number changed');
    expect((await rosa()).phone).toBe(newPhone);

    // The verified address hears of it, by email (never by SMS).
    const notice = await mail.waitForMail('rosa@example.com', 2);
    expect(notice.subject).toBe('Your phone number was changed');
    expect(notice.text).not.toContain(newPhone);
    const events = await mail.site.audit.forUser((await rosa()).id, new Date(0));
    expect(events.find((event) => event.type === 'phone_changed')?.detail).toBe(
      `•••• ${account.phone.slice(-4)} to •••• ${newPhone.slice(-4)}`,
    );
    // Login codes now go to the new number (past the 5 codes per 15 minutes this test has used).
    mail.site.clock.advanceMinutes(16);
    expectRedirect(await submitPassword(createBrowser(mail.site.app), account), '/verify');
    expect(mail.site.printed.at(-1)).toContain(newPhone.slice(-4));
  });

  it('does not change the number when its code is entered after the 5 minutes of the confirmation', async () => {
    await start();
    await confirmSettings(mail.site, browser);
    mail.site.clock.advanceMinutes(4);
    expectRedirect(await changePhone(fictionalPhone()), '/verify');
    mail.site.clock.advanceMinutes(1);
    expectRedirect(
      await submitCode(browser, lastConsoleCode(mail.site.printed, 'enrol')),
      '/account/security',
    );
    expect(await securityPageText(browser)).toContain(
      'Your confirmation ran out before the new number was confirmed',
    );
    expect((await rosa()).phone).toBe(account.phone);
    expect((await mail.site.audit.forUser((await rosa()).id, new Date(0))).map((e) => e.type)).not.toContain(
      'phone_changed',
    );
  });

  it('needs a fresh settings code before any code goes to a new number', async () => {
    await start();
    const codesBefore = consoleCodesPrinted(mail.site.printed, 'enrol');
    expectRedirect(await changePhone(fictionalPhone()), '/account/security');
    expect(await securityPageText(browser)).toContain('confirm it is you with a new code');
    expect(consoleCodesPrinted(mail.site.printed, 'enrol')).toBe(codesBefore);
    // And the form itself is only on the page once confirmed.
    expect((await browser.get('/account/security')).text).not.toContain('action="/account/security/phone"');
  });

  it('refuses a number that is not one, the same number, and numbers sign-up would refuse', async () => {
    await start({ env: { REGISTER_LIMIT_ACCOUNTS_PER_PHONE: '1' } });
    const taken = await register(createBrowser(mail.site.app), { username: 'sami' });
    await confirmSettings(mail.site, browser);
    const codesBefore = consoleCodesPrinted(mail.site.printed, 'enrol');

    const invalid = await changePhone('12345');
    expectPage(invalid, 400, /Choose the country of the number, or write it with \+ and the country code/);
    expect(invalid.text).toContain('value="12345"');
    expectPage(await changePhone('+1 202 555 01'), 400, /Enter a valid phone number/);
    expectPage(await changePhone('call me'), 400, /Enter a phone number using digits/);
    expectPage(await changePhone(''), 400, /Enter your phone number/);
    expectPage(await changePhone(account.phone), 400, /This is already your number/);
    expectPage(await changePhone('+445612345678'), 400, /Codes cannot be sent to internet \(VoIP\) numbers/);
    expectPage(await changePhone(taken.phone), 400, /This phone number cannot be used for another account/);
    expect(consoleCodesPrinted(mail.site.printed, 'enrol')).toBe(codesBefore);
    expect((await rosa()).phone).toBe(account.phone);
  });

  it('checks accounts per number again when the code is entered: another account may have proven it meanwhile', async () => {
    await start({ env: { REGISTER_LIMIT_ACCOUNTS_PER_PHONE: '1' } });
    await confirmSettings(mail.site, browser);
    const contested = fictionalPhone();
    expectRedirect(await changePhone(contested), '/verify');
    const code = lastConsoleCode(mail.site.printed, 'enrol');
    await register(createBrowser(mail.site.app), { username: 'sami', phone: contested });
    expectRedirect(await submitCode(browser, code), '/account/security');
    expect(await securityPageText(browser)).toContain('This phone number cannot be used for another account');
    expect((await rosa()).phone).toBe(account.phone);
  });

  it('takes nothing from the address’s sign-up allowance, and tries at most a few new numbers a day', async () => {
    // One sign-up an hour from this address: rosa's. Phone changes must not use up another.
    await start({ env: { REGISTER_LIMIT_PER_ADDRESS_HOUR: '2' } });
    for (let attempt = 1; attempt <= NEW_NUMBERS_PER_ACCOUNT_PER_DAY; attempt += 1) {
      await confirmSettings(mail.site, browser);
      expectRedirect(await changePhone(fictionalPhone()), '/verify');
      // Past the code service's own 5 codes per 15 minutes, so that the day's cap is what stops it.
      mail.site.clock.advanceMinutes(16);
    }
    await confirmSettings(mail.site, browser);
    const tooMany = await changePhone(fictionalPhone());
    expectPage(tooMany, 429, /You have tried 5 new numbers today/);
    expect(Number(tooMany.headers['retry-after'])).toBeGreaterThan(0);
    expect(await register(createBrowser(mail.site.app), { username: 'sami' })).toMatchObject({
      username: 'sami',
    });
  });

  it('keeps a new number counted when its code may have gone out (a provider that timed out)', async () => {
    // Threat: failing sends that cost the account nothing, again and again: a provider timing out
    // (or Twilio re-sending a pending code) may well have delivered the code it was asked for.
    let timeOutEnrolCodes = false;
    let inner: MfaProvider | undefined;
    const timingOut: MfaProvider = {
      name: 'console',
      channels: ['sms', 'voice'],
      async send(request) {
        const sent = await inner!.send(request);
        if (timeOutEnrolCodes && request.scope === 'enrol') {
          throw new ProviderError('unavailable', 'console', 'send sms code: timeout', { delivered: 'maybe' });
        }
        return sent;
      },
      verify: (request) => inner!.verify(request),
    };
    await start({ providers: createProviderPool([timingOut]) }, (site) => {
      inner = createConsoleProvider({
        codes: site.stores.codes,
        codeDigits: site.config.codeDigits,
        codeTtlMinutes: site.config.codeTtlMinutes,
        print: (line) => site.printed.push(line),
        outbox: site.outbox,
        texts: createCodeTexts({ siteName: SITE_NAME, publicHost: site.config.publicHost }),
      });
    });
    timeOutEnrolCodes = true;
    for (let attempt = 1; attempt <= NEW_NUMBERS_PER_ACCOUNT_PER_DAY; attempt += 1) {
      await confirmSettings(mail.site, browser);
      expect((await changePhone(fictionalPhone())).status).toBe(503);
      mail.site.clock.advanceMinutes(16);
    }
    timeOutEnrolCodes = false;
    await confirmSettings(mail.site, browser);
    expectPage(await changePhone(fictionalPhone()), 429, /You have tried 5 new numbers today/);
  });

  it('can be cancelled from the code page: the number stays', async () => {
    await start();
    await confirmSettings(mail.site, browser);
    expectRedirect(await changePhone(fictionalPhone()), '/verify');
    expectRedirect(await browser.submit('/verify', '/account/security/cancel'), '/account/security');
    expect(await securityPageText(browser)).not.toContain('A code is on its way');
    expectRedirect(await browser.get('/verify'), '/account');
    expect((await rosa()).phone).toBe(account.phone);
  });
});
