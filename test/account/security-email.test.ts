import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/eventually.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { logIn, register, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, openNewestLink, securityPageText } from '../helpers/security.js';

/**
 * Adding, changing and removing the email address on /account/security (issue 11). Threats: a
 * hijacked session moves the account's resets and notices to the attacker's mailbox (so the
 * change needs a fresh code, the new address its link, and the old one hears of it); the form
 * used to mail strangers; the old address silently dropped.
 */
describe('the email address on /account/security', () => {
  let mail: MailTestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    mail = await createMailTestApp();
    browser = createBrowser(mail.site.app);
  });
  afterEach(() => mail.close());

  const rosa = async () => (await mail.site.users.findByUsername('rosa'))!;
  const eventsOfRosa = async () =>
    (await mail.site.audit.forUser((await rosa()).id, new Date(0))).map((event) => event.type);
  const submitEmail = (email: string) =>
    browser.submit('/account/security', '/account/security/email', { email });

  async function signUp(email?: string) {
    account = await register(browser, { username: 'rosa', ...(email ? { email } : {}) });
    if (email) await openNewestLink(mail, createBrowser(mail.site.app), email);
    await logIn(mail.site, browser, account);
  }

  it('adds an address: a link goes to it, "send the link again" sends a new one, and the link confirms it', async () => {
    await signUp();
    expect(await securityPageText(browser)).toContain('Email None');
    await confirmSettings(mail.site, browser);
    expectRedirect(await submitEmail('rosa@example.com'), '/account/security');
    const first = await mail.waitForMail('rosa@example.com');
    expect(first.subject).toBe('Confirm your email address for Keyhole');
    let page = await securityPageText(browser);
    expect(page).toContain('We sent a link to rosa@example.com');
    expect(page).toContain('rosa@example.com waiting for its link');
    expect((await rosa()).email).toBeNull();

    // Sending it again needs no new code (it goes only where the person already chose), and voids the first.
    mail.site.clock.advanceMinutes(6);
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/resend'),
      '/account/security',
    );
    expect(await securityPageText(browser)).toContain('We sent a new link to rosa@example.com');
    const second = await mail.waitForMail('rosa@example.com', 2);
    expectPage(await browser.get(linkPathIn(first)), 410, /This link no longer works/);
    await openNewestLink(mail, createBrowser(mail.site.app), 'rosa@example.com', 2);
    expect(linkPathIn(second)).not.toBe(linkPathIn(first));
    expect((await rosa()).email).toBe('rosa@example.com');
    page = await securityPageText(browser);
    expect(page).toContain('rosa@example.com confirmed');
    expect(page).toContain('Email address confirmed');
  });

  it('changes it: the old address stays until the new one’s link is opened, then hears of the change', async () => {
    await signUp('old@example.com');
    await confirmSettings(mail.site, browser);
    expectRedirect(await submitEmail('new@example.com'), '/account/security');
    await mail.waitForMail('new@example.com');
    expect(await rosa()).toMatchObject({ email: 'old@example.com', pendingEmail: 'new@example.com' });
    expect(mail.mailTo('old@example.com')).toHaveLength(1);

    await openNewestLink(mail, createBrowser(mail.site.app), 'new@example.com');
    expect(await rosa()).toMatchObject({ email: 'new@example.com', pendingEmail: null });
    const notice = await mail.waitForMail('old@example.com', 2);
    expect(notice.subject).toBe('Your email address was changed');
    expect(notice.text).not.toContain('new@example.com');
  });

  it('removes it: notices and resets stop, and the old address is told, once', async () => {
    await signUp('rosa@example.com');
    await confirmSettings(mail.site, browser);
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/remove'),
      '/account/security',
    );
    expect(await securityPageText(browser)).toContain('Your email address was removed');
    expect(await rosa()).toMatchObject({ email: null, emailVerifiedAt: null, pendingEmail: null });
    const notice = await mail.waitForMail('rosa@example.com', 2);
    expect(notice.subject).toBe('Your email address was changed');
    // The notice's audit line is written once the mail server has answered, a moment after it has the message.
    await eventually(async () =>
      expect(await eventsOfRosa()).toEqual(expect.arrayContaining(['email_removed', 'notice_sent'])),
    );

    // Nothing left to remove: said so, and nothing mailed.
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/remove'),
      '/account/security',
    );
    expect(await securityPageText(browser)).toContain('Your account has no email address to remove');
    await sleep(200);
    expect(mail.mailTo('rosa@example.com')).toHaveLength(2);
  });

  it('tells no one when only a waiting address is removed (it was never proven)', async () => {
    await signUp();
    await confirmSettings(mail.site, browser);
    expectRedirect(await submitEmail('maybe@example.com'), '/account/security');
    await mail.waitForMail('maybe@example.com');
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/remove'),
      '/account/security',
    );
    expect((await rosa()).pendingEmail).toBeNull();
    await sleep(300);
    expect(mail.smtp.messages).toHaveLength(1);
  });

  it('needs a fresh settings code to add, change or remove; not to send the link again', async () => {
    await signUp('rosa@example.com');
    expectRedirect(await submitEmail('new@example.com'), '/account/security');
    expect(await securityPageText(browser)).toContain('confirm it is you with a new code');
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/remove'),
      '/account/security',
    );
    expect((await rosa()).email).toBe('rosa@example.com');
    expect(await eventsOfRosa()).not.toContain('email_removed');
    expect(mail.mailTo('new@example.com')).toEqual([]);
    // Nothing waits for a link: sending it again sends nothing.
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/resend'),
      '/account/security',
    );
    expect(await securityPageText(browser)).toContain('No email address is waiting for its link');
  });

  it('sends an account at most 5 links an hour, and says how long to wait', async () => {
    await signUp();
    await confirmSettings(mail.site, browser);
    for (let link = 1; link <= 5; link += 1) {
      expectRedirect(await submitEmail(`try${link}@example.com`), '/account/security');
    }
    const sixth = await submitEmail('try6@example.com');
    expectPage(
      sixth,
      429,
      /Too many links were sent for this account or to this address\. Try again in 60 minutes/,
    );
    expect(sixth.headers['retry-after']).toBe('3600');
    expect(sixth.text).toContain('value="try6@example.com"');
    await mail.waitForMail('try5@example.com');
    await sleep(200);
    expect(mail.mailTo('try6@example.com')).toEqual([]);
  });

  it('refuses an address that is not one, and the address the account already has', async () => {
    await signUp('rosa@example.com');
    await confirmSettings(mail.site, browser);
    const notAnAddress = await submitEmail('rosa at example.com');
    expectPage(notAnAddress, 400, /Enter an email address like name@example.com/);
    expect(notAnAddress.text).toContain('value="rosa at example.com"');
    expectPage(await submitEmail(''), 400, /Enter your email address/);
    expectPage(
      await submitEmail('rosa@example.com\r\nBcc: victim@example.org'),
      400,
      /Your email address has characters we cannot accept/,
    );
    expectPage(await submitEmail(' ROSA@example.com '), 400, /This is already your email address/);
    await sleep(200);
    expect(mail.smtp.messages).toHaveLength(1);
  });
});
