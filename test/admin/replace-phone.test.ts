import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUnprovenAccountsTask } from '../../src/auth/enrolment.js';
import { ACCOUNTS_PER_PHONE_MESSAGE } from '../../src/fraud/registration-guard.js';
import { formatPhoneForDisplay, maskPhone } from '../../src/users/phone.js';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { lastConsoleCode } from '../helpers/create-test-app.js';
import { eventually } from '../helpers/eventually.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { australianNumber } from '../helpers/fraud.js';
import {
  logIn,
  register,
  registerUnproven,
  submitCode,
  submitPassword,
  type TestAccount,
} from '../helpers/flows.js';
import { createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';
import { openNewestLink, securityPageText } from '../helpers/security.js';

/**
 * An admin's replacement of the phone number of a person who lost their phone and has nothing the
 * settings step-up takes. Threats: a stranger who knows the password asks an admin to move the
 * account to their phone (the admin confirms they checked with the owner; the new number is only
 * proven at the next login, with the password; the owner hears of it); a secure area left open
 * used to do it; an admin moving their own account's codes; a replacement nobody can account for.
 */
describe('replacing an account’s phone number from the secure area', () => {
  let mail: MailTestApp;
  let admin: Browser;
  let ann: TestAccount;
  let annId: number;
  // Not a number of the fictional range the accounts are given (+1 202 555 0100 to 0199).
  const newPhone = '+12025550342';

  const replacePage = () => `/admin/accounts/${annId}/replace-phone`;
  const replace = (fields: Record<string, string>, browser = admin) =>
    browser.submit(replacePage(), replacePage(), fields);
  const goodForm = { phone: '202 555 0342', country: 'US', reason: 'lost her phone', confirm: 'yes' };
  const auditOf = async (type: string) =>
    (await mail.site.audit.recent(200)).filter((event) => event.type === type);
  const printedTo = (phone: string) =>
    mail.site.printed.filter((line) => line.includes(` to ${formatPhoneForDisplay(phone)}: `));
  const annNow = async () => (await mail.site.users.findById(annId))!;

  beforeEach(async () => {
    mail = await createMailTestApp({ env: { SMS_COUNTRIES: 'US', REGISTER_LIMIT_ACCOUNTS_PER_PHONE: '1' } });
    const { site } = mail;
    admin = createBrowser(site.app);
    const root = await register(admin, { username: 'root' });
    ann = await register(createBrowser(site.app), { username: 'ann', email: 'ann@example.com' });
    await openNewestLink(mail, createBrowser(site.app), 'ann@example.com');
    annId = (await site.users.findByUsername('ann'))!.id;
    await site.grantAdmin('root');
    await logIn(site, admin, root);
    expectRedirect(await admin.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(admin, lastConsoleCode(site.printed, 'admin')), '/admin');
  });
  afterEach(() => mail.close());

  it('is offered on the account’s page, and its own page says what happens and what the admin never gets', async () => {
    expect((await admin.get(`/admin/accounts/${annId}`)).text).toContain(`href="${replacePage()}"`);
    const page = await admin.get(replacePage());
    expectPage(page, 200);
    const text = visibleText(page.text);
    expect(text).toContain(`lost their phone, ${maskPhone(ann.phone)}`);
    expect(text).toContain('You never see or set the password');
    expect(page.text).toContain('autocomplete="off"');
    expect(page.headers['cache-control']).toBe('no-store');
  });

  it('moves the account to the new number: its sessions end, and the owner proves the number with the password and a code sent to it', async () => {
    const annBrowser = createBrowser(mail.site.app);
    await logIn(mail.site, annBrowser, ann);
    const toOldNumber = printedTo(ann.phone).length;

    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    const account = visibleText((await admin.get(`/admin/accounts/${annId}`)).text);
    expect(account).toContain(
      `ann’s number is now ${maskPhone(newPhone)}, to be proven (1 session ended, 0 apps and passkeys, 0 recovery codes and 0 remembered browsers removed, reset links voided). At its next login, after the password, a code goes to the new number.`,
    );
    expect(account).toContain(`${maskPhone(newPhone)} (not yet proven: a code goes to it at the next login)`);
    expect(await annNow()).toMatchObject({ phone: newPhone, phoneVerifiedAt: null });
    // The session she had open is over.
    expectRedirect(await annBrowser.get('/account'), /^\/login/);

    const owner = createBrowser(mail.site.app);
    expectRedirect(await submitPassword(owner, ann), '/verify');
    const codePage = visibleText((await owner.get('/verify')).text);
    expect(codePage).toContain('An admin replaced your phone number');
    expect(codePage).toContain(maskPhone(newPhone));
    // Only a sign-up corrects its own number: whoever has the password alone cannot move it again.
    expect(codePage).not.toContain('Wrong number?');
    expectPage(
      await owner.submit('/verify', '/verify/number', { phone: '+12025550343' }),
      400,
      /The number can only be changed here while signing up/,
    );
    expect((await annNow()).phone).toBe(newPhone);

    const sent = printedTo(newPhone);
    expect(sent).toHaveLength(1);
    const code = sent[0]!.match(/: Keyhole sign-up code: (\d+) /)![1]!;
    expectRedirect(await submitCode(owner, code), '/account');
    expectPage(await owner.get('/account'), 200, /ann/);
    expect((await annNow()).phoneVerifiedAt).not.toBeNull();
    // The lost phone got nothing.
    expect(printedTo(ann.phone)).toHaveLength(toOldNumber);

    // From now on it is her number, for logins as for anything else.
    const later = createBrowser(mail.site.app);
    expectRedirect(await submitPassword(later, ann), '/verify');
    expect(printedTo(newPhone).at(-1)).toMatch(/: Keyhole code: \d+ /);
  });

  it('audits who, whom and why with masked numbers only; the owner is emailed and sees it in her log', async () => {
    await mail.site.stores.rememberedBrowsers.add(
      {
        userId: annId,
        tokenHash: 'a'.repeat(64),
        label: 'Firefox on Windows',
        expiresAt: new Date(mail.site.clock.now().getTime() + 60_000),
      },
      { maxPerAccount: 10 },
    );
    expectRedirect(await replace({ ...goodForm, reason: '  lost   her phone ' }), `/admin/accounts/${annId}`);
    const full = [
      newPhone,
      ann.phone,
      newPhone.slice(2),
      ann.phone.slice(2),
      formatPhoneForDisplay(newPhone),
    ];
    const [event] = await auditOf('account_phone_replaced');
    expect(event).toMatchObject({
      userId: annId,
      username: 'ann',
      detail: `by root (${maskPhone(ann.phone)} to ${maskPhone(newPhone)}; 0 sessions ended, 0 apps and passkeys, 0 recovery codes and 1 remembered browser removed, reset links voided): lost her phone`,
    });
    for (const number of full) expect(event!.detail).not.toContain(number);
    expect(await mail.site.stores.rememberedBrowsers.listForUser(annId)).toEqual([]);

    const notice = await mail.waitForMail('ann@example.com', 2);
    expect(notice.subject).toBe('An admin replaced your phone number');
    expect(notice.text).toContain(`with the number ${maskPhone(newPhone)}`);
    for (const number of full) expect(notice.text).not.toContain(number);
    await eventually(async () =>
      expect((await mail.site.audit.forUser(annId, new Date(0))).map((e) => e.type)).toContain('notice_sent'),
    );

    const owner = createBrowser(mail.site.app);
    expectRedirect(await submitPassword(owner, ann), '/verify');
    expectRedirect(await submitCode(owner, lastConsoleCode(mail.site.printed, 'enrol')), '/account');
    const log = await securityPageText(owner);
    expect(log).toContain('Phone number replaced by an admin');
    // Her log keeps the admin's name and reason out.
    expect(log).not.toContain('lost her phone');
    for (const number of full) expect(log).not.toContain(number);
  });

  it('needs an admin code from the last 5 minutes, then comes back to its page', async () => {
    // Threat: a secure area left open at a desk used to move someone's codes.
    mail.site.clock.advanceMinutes(6);
    expectRedirect(await replace(goodForm), '/admin/confirm');
    expect((await annNow()).phone).toBe(ann.phone);
    expectRedirect(await admin.submit('/admin/confirm', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(admin, lastConsoleCode(mail.site.printed, 'admin')), replacePage());
    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    expect((await annNow()).phone).toBe(newPhone);
  });

  it('does nothing without the confirmation, a reason or a valid number: a 400 on its page', async () => {
    const unconfirmed = await replace({ ...goodForm, confirm: '' });
    expectPage(unconfirmed, 400, /Confirm that you checked the request with the account’s owner/);
    expect(unconfirmed.text).toContain('lost her phone');
    expect(unconfirmed.text).toContain('202 555 0342');
    expectPage(await replace({ ...goodForm, reason: ' ' }), 400, /Say why you are doing this/);
    expectPage(await replace({ ...goodForm, phone: '' }), 400, /Enter your phone number/);
    expectPage(await replace({ ...goodForm, phone: '555 0342' }), 400, /Enter a valid phone number/);
    expectPage(await replace({ ...goodForm, phone: ann.phone }), 400, /This is already ann’s number/);
    expect(await annNow()).toMatchObject({ phone: ann.phone, phoneVerifiedAt: expect.any(Date) });
    expect(await auditOf('account_phone_replaced')).toEqual([]);
  });

  it('refuses a number a sign-up would be refused: outside SMS_COUNTRIES, or on too many accounts', async () => {
    // Threat: the admin form as a way round the toll-fraud rules a person's own change passes.
    expectPage(
      await replace({ ...goodForm, phone: australianNumber(1), country: '' }),
      400,
      /Codes cannot be sent to numbers in Australia from this site/,
    );
    const ben = await register(createBrowser(mail.site.app), { username: 'ben' });
    const taken = await replace({ ...goodForm, phone: ben.phone, country: '' });
    expectPage(taken, 400);
    expect(visibleText(taken.text)).toContain(ACCOUNTS_PER_PHONE_MESSAGE);
    expect((await annNow()).phone).toBe(ann.phone);
    expect(await auditOf('account_phone_replaced')).toEqual([]);
  });

  it('is refused for the admin’s own account: another admin must do it', async () => {
    // Threat: whoever holds an admin's session moves the account's codes, the secure area's too.
    const rootId = (await mail.site.users.findByUsername('root'))!.id;
    const ownPage = `/admin/accounts/${rootId}/replace-phone`;
    expect((await admin.get(`/admin/accounts/${rootId}`)).text).not.toContain(`href="${ownPage}"`);
    const page = await admin.get(ownPage);
    expectPage(page, 200, /You cannot replace your own phone number here. Ask another admin to do it/);
    expect(page.text).not.toContain(`action="${ownPage}"`);
    const before = (await mail.site.users.findById(rootId))!.phone;
    expectPage(await admin.submit(replacePage(), ownPage, goodForm), 403, /You cannot replace your own/);
    expect((await mail.site.users.findById(rootId))!.phone).toBe(before);
    expect(await auditOf('account_phone_replaced')).toEqual([]);
  });

  it('is refused for another admin’s account: the operator takes the role away first', async () => {
    // Threat: one secure-area session moving every other admin's codes (the secure area's too) away.
    await mail.site.grantAdmin('ann');
    expectPage(
      await replace(goodForm),
      403,
      /ann is an admin, and an admin’s number cannot be replaced here/,
    );
    expect((await annNow()).phone).toBe(ann.phone);
    expect(await auditOf('account_phone_replaced')).toEqual([]);
  });

  it('removes the account’s recovery codes, apps and passkeys, and voids the reset links already sent', async () => {
    // Threat: whoever has the lost phone holds its authenticator app (and perhaps the password saved
    // on it): once the owner proves the new number, those would open the account again.
    await mail.site.stores.recoveryCodes.replaceAll(annId, ['a'.repeat(64), 'b'.repeat(64)]);
    const link = await mail.site.stores.tokens.issue({
      purpose: 'password_reset',
      userId: annId,
      ttlMs: 30 * 60_000,
    });
    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    expect(await mail.site.stores.tokens.peek('password_reset', link)).toBeNull();
    const [event] = await auditOf('account_phone_replaced');
    expect(event!.detail).toContain('2 recovery codes');
    expect(await mail.site.stores.recoveryCodes.summary(annId)).toMatchObject({ unused: 0 });
  });

  it('turns a login without the second step back on', async () => {
    // Threat: MFA_POLICY=optional, the owner had turned the code off, and whoever has the lost
    // phone has the password saved on it: once she proves the new number, the password alone opens it.
    await mail.site.users.setTwoFactorOff(annId, true);
    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    expect((await annNow()).twoFactorOffAt).toBeNull();
  });

  it('gives no new password to a reset verified with the old phone before the move, once the new number is proven', async () => {
    // Threat: whoever holds the old phone and the mailbox verifies a reset; the admin moves the
    // number; the owner proves it; the old reset would then set a password and lock her out again.
    const thief = createBrowser(mail.site.app);
    const forgot = await thief.get('/forgot');
    await thief.agent
      .post('/forgot')
      .type('form')
      .send({ identifier: 'ann', _csrf: csrfTokenIn(forgot.text) });
    const link = linkPathIn(await mail.waitForMail('ann@example.com', 2));
    expectRedirect(await thief.submit(link, link), '/verify');
    expectRedirect(await submitCode(thief, lastConsoleCode(mail.site.printed, 'reset')), '/reset/password');
    mail.site.clock.advance(60_000);

    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    const owner = createBrowser(mail.site.app);
    expectRedirect(await submitPassword(owner, ann), '/verify');
    expectRedirect(await submitCode(owner, lastConsoleCode(mail.site.printed, 'enrol')), '/account');

    mail.site.clock.advance(1_000);
    expectRedirect(
      await thief.submit('/reset/password', '/reset/password', {
        new_password: 'the thief’s own passphrase',
        confirm_password: 'the thief’s own passphrase',
      }),
      '/forgot',
    );
    expectPage(await owner.get('/account'), 200, /ann/);
    expectRedirect(await submitPassword(createBrowser(mail.site.app), ann), '/verify');
  });

  it('leaves the owner her codes to the new number however many sign-ups name it', async () => {
    // Threat: a stranger who learnt the new number uses up its three sign-up codes a day with
    // sign-ups of their own, every day, and the owner can never prove it.
    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    const stranger = createBrowser(mail.site.app);
    expectRedirect(
      await stranger.submit('/register', '/register', {
        username: 'mallory',
        password: 'a long passphrase for mallory',
        phone: newPhone,
        country: 'US',
        channel: 'sms',
      }),
      '/verify',
    );
    for (let resend = 0; resend < 2; resend += 1) {
      mail.site.clock.advance(31_000);
      await stranger.submit('/verify', '/verify/resend', {});
    }
    mail.site.clock.advance(31_000);
    expectPage(
      await stranger.submit('/verify', '/verify/resend', {}),
      429,
      /No more codes can be sent to this number today/,
    );

    const owner = createBrowser(mail.site.app);
    expectRedirect(await submitPassword(owner, ann), '/verify');
    expectRedirect(await submitCode(owner, lastConsoleCode(mail.site.printed, 'enrol')), '/account');
  });

  it('is refused to a signed-in person who is not an admin', async () => {
    expectPage(await admin.get(replacePage()), 200);
    const annBrowser = createBrowser(mail.site.app);
    await logIn(mail.site, annBrowser, ann);
    expectPage(await annBrowser.get(replacePage()), 403, /for administrators only/);
    expectPage(await replace(goodForm, annBrowser), 403, /for administrators only/);
    expect((await annNow()).phone).toBe(ann.phone);
  });

  it('is refused for an account that never logged in, and housekeeping never removes a replaced one', async () => {
    // An unproven sign-up corrects its own number; housekeeping removes it after a day.
    await registerUnproven(createBrowser(mail.site.app), { username: 'rosa' });
    const rosaId = (await mail.site.users.findByUsername('rosa'))!.id;
    const rosaPage = `/admin/accounts/${rosaId}/replace-phone`;
    expectPage(await admin.submit(rosaPage, rosaPage, goodForm), 409, /rosa has never logged in/);

    expectRedirect(await replace(goodForm), `/admin/accounts/${annId}`);
    await register(createBrowser(mail.site.app), { username: 'tess' });
    mail.site.clock.advanceMinutes(25 * 60);
    const sweep = createUnprovenAccountsTask({ users: mail.site.users, clock: mail.site.clock });
    expect(await sweep.runBatch()).toBe(1);
    expect(await mail.site.users.findByUsername('rosa')).toBeNull();
    expect(await annNow()).toMatchObject({ phone: newPhone, phoneVerifiedAt: null });
  });
});
