import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RECOVERY_CODES_FILE_NAME,
  RECOVERY_CODES_OFFER_PATH,
  recoveryCodesOfferPath,
} from '../../src/account/recovery-code-routes.js';
import { createRecoveryCodes, type RecoveryCodes } from '../../src/factors/recovery-codes.js';
import { createFactorSecrets } from '../../src/factors/secrets.js';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { TEST_FACTOR_KEY, lastConsoleCode } from '../helpers/create-test-app.js';
import { eventually } from '../helpers/eventually.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, openNewestLink, securityPageText } from '../helpers/security.js';

const PATH = '/account/recovery-codes';
const CODE = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/;

/** The codes a page shows, in order. */
function codesIn(html: string): string[] {
  return [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((match) => match[1]!);
}

/**
 * Recovery codes in the account's settings (issue 12). Threats: a session left open (or stolen)
 * used to make codes that let its holder in later without the phone; codes read again from the
 * site after the person saved them (a later visitor of the same browser, a stolen session); a
 * set the owner relies on silently replaced; a person who never saves codes and loses the phone.
 */
describe('recovery codes pages', () => {
  let mail: MailTestApp;
  let browser: Browser;
  let account: TestAccount;
  let userId: number;
  /** The app's own recovery codes (its store, its key), to use a code as the code page will. */
  let codes: RecoveryCodes;

  beforeEach(async () => {
    mail = await createMailTestApp();
    browser = createBrowser(mail.site.app);
    account = await register(
      browser,
      { username: 'rosa', email: 'rosa@example.com' },
      { keepRecoveryCodesOffer: true },
    );
    await openNewestLink(mail, createBrowser(mail.site.app), 'rosa@example.com');
    // An account without recovery codes that has not answered the offer: the login leads to it.
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(await submitCode(browser, lastConsoleCode(mail.site.printed)), RECOVERY_CODES_OFFER_PATH);
    userId = (await mail.site.users.findByUsername('rosa'))!.id;
    codes = createRecoveryCodes({
      store: mail.site.stores.recoveryCodes,
      secrets: createFactorSecrets(TEST_FACTOR_KEY),
      clock: mail.site.clock,
    });
  });
  afterEach(() => mail.close());

  const makeCodes = () => browser.submit(PATH, PATH);
  const download = (from: Browser, page: { text: string }, fields: Record<string, string> = {}) =>
    from.agent
      .post(`${PATH}/download`)
      .type('form')
      .send({ codes: codesIn(page.text).join(' '), _csrf: csrfTokenIn(page.text), ...fields });
  const userNow = async () => (await mail.site.users.findById(userId))!;

  describe(`GET and POST ${PATH}`, () => {
    it('is behind the login', async () => {
      expectRedirect(await createBrowser(mail.site.app).get(PATH), '/login?next=%2Faccount%2Frecovery-codes');
      expectRedirect(
        await createBrowser(mail.site.app).get(RECOVERY_CODES_OFFER_PATH),
        '/login?next=%2Faccount%2Frecovery-codes%2Foffer',
      );
    });

    it('needs a fresh settings code to make a set, and offers to send one that leads back here', async () => {
      const page = await browser.get(PATH);
      expectPage(page, 200, /Recovery codes/);
      expect(page.headers['cache-control']).toBe('no-store');
      expect(visibleText(page.text)).toContain('You have no recovery codes.');
      expect(visibleText(page.text)).toContain('It needs a new code first');

      // Threat: a session left open on a shared computer makes codes its holder keeps.
      expectRedirect(await makeCodes(), '/account/security');
      expect(await codes.status(userId)).toEqual({ total: 0, left: 0, createdAt: null });

      expectRedirect(await browser.submit(PATH, '/account/security/confirm', { returnTo: PATH }), '/verify');
      expectRedirect(await submitCode(browser, lastConsoleCode(mail.site.printed, 'settings')), PATH);
      const made = await makeCodes();
      expectPage(made, 200, /Your recovery codes/);
      expect(made.headers['cache-control']).toBe('no-store');
      const shown = codesIn(made.text);
      expect(shown).toHaveLength(10);
      for (const code of shown) expect(code).toMatch(CODE);
      expect(new Set(shown).size).toBe(10);
      expect(visibleText(made.text)).toContain('this is the only time we show them');

      const notice = await mail.waitForMail('rosa@example.com', 2);
      expect(notice.subject).toBe('New recovery codes were made');
      expect(notice.text).toContain('the old ones no longer work');
      for (const code of shown) expect(notice.text).not.toContain(code);
      await eventually(async () =>
        expect((await mail.site.audit.forUser(userId, new Date(0))).map((event) => event.type)).toEqual(
          expect.arrayContaining(['recovery_codes_generated', 'notice_sent']),
        ),
      );

      // Five minutes after the code, the settings confirmation is over: no new set without another.
      mail.site.clock.advanceMinutes(5);
      expectRedirect(await makeCodes(), '/account/security');
      expect(await codes.use(userId, shown[0]!)).toEqual({ ok: true, left: 9 });
    });

    it('shows the codes once: the page shows none of them afterwards, only how many are left', async () => {
      // Threat: codes read again from the site later (a stolen session, the next user of a shared browser).
      await confirmSettings(mail.site, browser);
      const shown = codesIn((await makeCodes()).text);
      const after = await browser.get(PATH);
      expect(codesIn(after.text)).toEqual([]);
      for (const code of shown) expect(after.text).not.toContain(code);
      expect(visibleText(after.text)).toContain('Codes left 10 of 10');
      expect(visibleText(after.text)).toMatch(/Made Sat, 21 Nov 2026, 10:\d\d UTC/);
      expect(visibleText(after.text)).toContain('Your current codes stop working at once');
      for (const code of shown) expect((await browser.get('/account/security')).text).not.toContain(code);
    });

    it('downloads the set as a text file from the page that shows it, until the person has saved it', async () => {
      await confirmSettings(mail.site, browser);
      const page = await makeCodes();
      const shown = codesIn(page.text);

      const file = await download(browser, page);
      expect(file.status).toBe(200);
      expect(file.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(file.headers['content-disposition']).toBe(`attachment; filename="${RECOVERY_CODES_FILE_NAME}"`);
      expect(RECOVERY_CODES_FILE_NAME).toBe('keyhole-recovery-codes.txt');
      expect(file.headers['cache-control']).toBe('no-store');
      expect(file.text).toContain('Keyhole recovery codes for rosa');
      expect(file.text.match(/[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/g)).toEqual(shown);
      // Again, if the first download went wrong.
      expect((await download(browser, page)).status).toBe(200);

      // Another session of the same account (a stolen cookie, say) gets nothing, even with the codes' page.
      const other = createBrowser(mail.site.app);
      await logIn(mail.site, other, account);
      const otherPage = await other.get(PATH);
      expectRedirect(
        await download(other, {
          ...page,
          text: page.text.replace(csrfTokenIn(page.text), csrfTokenIn(otherPage.text)),
        }),
        PATH,
      );

      // "I have saved these codes": back to the set's page, and no download any more.
      expectRedirect(await browser.submit(PATH, `${PATH}/saved`), PATH);
      expect(visibleText((await browser.get(PATH)).text)).toContain('Keep your recovery codes safe');
      const refused = await download(browser, page);
      expectRedirect(refused, PATH);
      expect(refused.headers['content-disposition']).toBeUndefined();
      expect(visibleText((await browser.get(PATH)).text)).toContain(
        'Those codes can no longer be downloaded',
      );
    });

    it('allows the download for 10 minutes only, of the current set only, and of codes only', async () => {
      await confirmSettings(mail.site, browser);
      const first = await makeCodes();
      expectRedirect(await download(browser, first, { codes: 'not codes at all' }), PATH);
      expectRedirect(await download(browser, first, { codes: codesIn(first.text).slice(1).join(' ') }), PATH);
      mail.site.clock.advance(10 * 60_000 - 1);
      expect((await download(browser, first)).status).toBe(200);
      mail.site.clock.advance(1);
      expectRedirect(await download(browser, first), PATH);

      // A set replaced in another tab: the page of the old set downloads nothing.
      await confirmSettings(mail.site, browser);
      const older = await makeCodes();
      mail.site.clock.advance(1_000);
      await makeCodes();
      expectRedirect(await download(browser, older), PATH);
      expect(visibleText((await browser.get(PATH)).text)).toContain('replaced by a newer set');
    });

    it('voids the whole old set when a new one is made', async () => {
      await confirmSettings(mail.site, browser);
      const old = codesIn((await makeCodes()).text);
      expect(await codes.use(userId, old[0]!)).toEqual({ ok: true, left: 9 });
      mail.site.clock.advance(1_000);
      const fresh = codesIn((await makeCodes()).text);
      for (const code of old) expect(await codes.use(userId, code)).toEqual({ ok: false });
      expect(await codes.use(userId, fresh[0]!)).toEqual({ ok: true, left: 9 });
    });
  });

  describe('logging in with a recovery code (the phone lost)', () => {
    /** A browser at the login's code page, switched to "Use a recovery code". */
    const atRecoveryCodeForm = async () => {
      const lost = createBrowser(mail.site.app);
      expectRedirect(await submitPassword(lost, account), '/verify');
      expect(visibleText((await lost.get('/verify')).text)).toContain('Use a recovery code');
      expectRedirect(await lost.submit('/verify', '/verify/method', { method: 'recovery' }), '/verify');
      expect(visibleText((await lost.get('/verify')).text)).toContain(
        'Enter one of the recovery codes you saved',
      );
      return lost;
    };
    const enterRecoveryCode = (lost: Browser, code: string) =>
      lost.submit('/verify', '/verify', { method: 'recovery', recovery_code: code });

    it('lets the person in once per code, and tells the owner how many are left', async () => {
      await confirmSettings(mail.site, browser);
      const shown = codesIn((await makeCodes()).text);

      const lost = await atRecoveryCodeForm();
      expectRedirect(await enterRecoveryCode(lost, shown[0]!.toLowerCase()), '/account');
      expect(visibleText((await lost.get('/account')).text)).toContain('Signed in as rosa');
      const notice = await mail.waitForMail('rosa@example.com', 3);
      expect(notice.subject).toBe('A recovery code was used');
      expect(notice.text).toContain('9 unused recovery codes are left.');

      // The same code a second time: refused.
      const again = await atRecoveryCodeForm();
      expectPage(
        await enterRecoveryCode(again, shown[0]!),
        400,
        /That recovery code is not right, or it was used already/,
      );
      expect(await codes.remaining(userId)).toBe(9);
    });

    it('lets exactly one of two parallel logins with the same code in', async () => {
      // Threat: a code seen over a shoulder, replayed at the same instant as the owner's own use.
      await confirmSettings(mail.site, browser);
      const [code] = codesIn((await makeCodes()).text);
      const browsers = [await atRecoveryCodeForm(), await atRecoveryCodeForm()];
      const pages = await Promise.all(browsers.map((lost) => lost.get('/verify')));
      const answers = await Promise.all(
        browsers.map((lost, index) =>
          lost.agent
            .post('/verify')
            .type('form')
            .send({ method: 'recovery', recovery_code: code!, _csrf: csrfTokenIn(pages[index]!.text) }),
        ),
      );
      expect(answers.map((answer) => answer.status).sort()).toEqual([303, 400]);
      expect(await codes.remaining(userId)).toBe(9);
    });
  });

  describe('where they do not work', () => {
    // Threat: a printed sheet found in a drawer must not open the settings or the secure area:
    // recovery codes satisfy the login and a reset only.
    it.each([
      ['the settings step', '/account/security', '/account/security/confirm'],
      ['the secure area', '/admin', '/admin/step-up'],
    ])('are neither offered nor accepted at %s', async (_step, page, start) => {
      await confirmSettings(mail.site, browser);
      const [code] = codesIn((await makeCodes()).text);
      await mail.site.grantAdmin('rosa');
      mail.site.clock.advanceMinutes(6);
      expectRedirect(await browser.submit(page, start), '/verify');
      expect(visibleText((await browser.get('/verify')).text)).not.toContain('recovery code');
      expectPage(
        await browser.submit('/verify', '/verify/method', { method: 'recovery' }),
        400,
        /That way of confirming cannot be used here/,
      );
      expectPage(
        await browser.submit('/verify', '/verify', { method: 'recovery', recovery_code: code! }),
        400,
      );
      expect(await codes.remaining(userId)).toBe(10);
    });
  });

  describe('the reminders', () => {
    it('reminds on the account page while there are no codes, and warns at 3 or fewer left', async () => {
      const accountText = async () => visibleText((await browser.get('/account')).text);
      expect(await accountText()).toContain('You have no recovery codes.');
      expect(await securityPageText(browser)).toContain('You have no recovery codes. Make recovery codes');

      await confirmSettings(mail.site, browser);
      const shown = codesIn((await makeCodes()).text);
      for (const code of shown.slice(0, 6)) await codes.use(userId, code);
      expect(await accountText()).not.toMatch(/recovery codes? left/);
      expect(await accountText()).not.toContain('You have no recovery codes');

      await codes.use(userId, shown[6]!);
      expect(await accountText()).toContain('Only 3 recovery codes left: make a new set');
      expect(await securityPageText(browser)).toContain('Codes left 3 of 10');
      expect(await securityPageText(browser)).toContain('Only 3 recovery codes left: make a new set.');
      expect(visibleText((await browser.get(PATH)).text)).toContain(
        'Only 3 recovery codes left: make a new set.',
      );

      await codes.use(userId, shown[7]!);
      await codes.use(userId, shown[8]!);
      expect(await accountText()).toContain('Only 1 recovery code left: make a new set');
      await codes.use(userId, shown[9]!);
      expect(await accountText()).toContain('No recovery codes left: make a new set');
      expect(visibleText((await browser.get(PATH)).text)).toContain('You have used all your recovery codes');
    });
  });

  describe('the offer after the first login', () => {
    const offerText = async () => visibleText((await browser.get(RECOVERY_CODES_OFFER_PATH)).text);

    it('is where a login of an account without codes leads, until it is answered', async () => {
      // beforeEach's login led to the offer; a second login, the offer still unanswered, does too.
      const other = createBrowser(mail.site.app);
      expectRedirect(await submitPassword(other, account), '/verify');
      expectRedirect(await submitCode(other, lastConsoleCode(mail.site.printed)), RECOVERY_CODES_OFFER_PATH);
      const user = await userNow();
      const status = await codes.status(userId);
      expect(recoveryCodesOfferPath(user, status)).toBe(RECOVERY_CODES_OFFER_PATH);
      expect(recoveryCodesOfferPath(user, status, '/admin?tab=1')).toBe(
        `${RECOVERY_CODES_OFFER_PATH}?next=%2Fadmin%3Ftab%3D1`,
      );
      // Never back to the offer itself, nor anywhere off the site.
      expect(recoveryCodesOfferPath(user, status, RECOVERY_CODES_OFFER_PATH)).toBe(RECOVERY_CODES_OFFER_PATH);
      expect(recoveryCodesOfferPath(user, status, '//evil.example/')).toBe(RECOVERY_CODES_OFFER_PATH);
      expect(recoveryCodesOfferPath(user, { total: 10 })).toBeNull();
      expect(recoveryCodesOfferPath({ ...user, recoveryCodesOfferedAt: new Date() }, status)).toBeNull();
    });

    it('can be skipped once: not offered again, and the account page keeps reminding', async () => {
      const page = await browser.get(RECOVERY_CODES_OFFER_PATH);
      expectPage(page, 200, /Save recovery codes in case you lose your phone/);
      expect(page.headers['cache-control']).toBe('no-store');

      const skipped = await browser.submit(RECOVERY_CODES_OFFER_PATH, `${RECOVERY_CODES_OFFER_PATH}/skip`, {
        next: '/account',
      });
      expectRedirect(skipped, '/account');
      const user = await userNow();
      expect(user.recoveryCodesOfferedAt).toEqual(mail.site.clock.now());
      expect(recoveryCodesOfferPath(user, await codes.status(userId))).toBeNull();
      const accountPage = visibleText((await browser.get('/account')).text);
      expect(accountPage).toContain('You can make recovery codes at any time from your security settings.');
      expect(accountPage).toContain(
        'You have no recovery codes. If you lose your phone, they are how you get back in.',
      );
      expect(await codes.status(userId)).toEqual({ total: 0, left: 0, createdAt: null });
      // The next login goes where logins go.
      await logIn(mail.site, createBrowser(mail.site.app), account);
    });

    it('makes a first set right after the login without a settings code, and goes on to where the login was going', async () => {
      expect(await offerText()).toContain('Make my recovery codes');
      const made = await browser.submit(RECOVERY_CODES_OFFER_PATH, RECOVERY_CODES_OFFER_PATH, {
        next: '/account/security',
      });
      expectPage(made, 200, /Your recovery codes/);
      expect(made.headers['cache-control']).toBe('no-store');
      const shown = codesIn(made.text);
      expect(shown).toHaveLength(10);
      expect((await userNow()).recoveryCodesOfferedAt).not.toBeNull();
      expect((await download(browser, made)).status).toBe(200);
      expectRedirect(await browser.submit(PATH, `${PATH}/saved`), '/account/security');

      // Pressed again (another tab, the back button): the set is not replaced without a settings code.
      const again = await browser.submit(PATH, RECOVERY_CODES_OFFER_PATH);
      expectRedirect(again, PATH);
      expect(visibleText((await browser.get(PATH)).text)).toContain(
        'Your account already has recovery codes',
      );
      expect(await codes.use(userId, shown[0]!)).toEqual({ ok: true, left: 9 });
      // And there is nothing to offer any more, after this login or the next.
      expectRedirect(await browser.get(RECOVERY_CODES_OFFER_PATH), '/account');
      await logIn(mail.site, createBrowser(mail.site.app), account);
    });

    it('needs a settings code once 10 minutes have passed since the login', async () => {
      // Threat: a session left open (or stolen) long after its login makes codes without any new proof.
      mail.site.clock.advance(10 * 60_000);
      const late = await browser.submit(RECOVERY_CODES_OFFER_PATH, RECOVERY_CODES_OFFER_PATH);
      expectRedirect(late, PATH);
      expect(visibleText((await browser.get(PATH)).text)).toContain('confirm it is you with a new code');
      expect(await codes.status(userId)).toEqual({ total: 0, left: 0, createdAt: null });
      expect((await userNow()).recoveryCodesOfferedAt).not.toBeNull();

      // With a settings code, the offer makes the set.
      await confirmSettings(mail.site, browser);
      expectPage(
        await browser.submit(RECOVERY_CODES_OFFER_PATH, RECOVERY_CODES_OFFER_PATH),
        200,
        /Your recovery codes/,
      );
    });

    it('makes one set when pressed twice at once', async () => {
      const page = await browser.get(RECOVERY_CODES_OFFER_PATH);
      const token = csrfTokenIn(page.text);
      const presses = await Promise.all(
        [1, 2].map(() => browser.agent.post(RECOVERY_CODES_OFFER_PATH).type('form').send({ _csrf: token })),
      );
      expect(presses.map((press) => press.status).sort()).toEqual([200, 303]);
      const shown = codesIn(presses.find((press) => press.status === 200)!.text);
      expect(await codes.use(userId, shown[0]!)).toEqual({ ok: true, left: 9 });
    });
  });
});
