import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { newestOutboxCode, register, registerUnproven, submitCode } from '../helpers/flows.js';
import { createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';

/**
 * An email address is proven by a one-time link (issue 11). Threats: an address typed by someone
 * who does not own it (mail sent to a stranger, resets sent to a stranger), a link used twice or
 * leaked through a Referer header, a bot that makes the site mail strangers.
 */
describe('proving an email address', () => {
  let mail: MailTestApp;
  let browser: Browser;
  beforeEach(async () => {
    mail = await createMailTestApp();
    browser = createBrowser(mail.site.app);
  });
  afterEach(() => mail.close());

  const accountOf = async (username: string) => (await mail.site.users.findByUsername(username))!;

  it('sends the address given at sign-up its link only once the phone is proven, and the link confirms it', async () => {
    await registerUnproven(browser, { username: 'rosa', email: 'rosa@example.com' });
    expect((await accountOf('rosa')).pendingEmail).toBe('rosa@example.com');
    // No phone proven yet: nothing mailed.
    expect(mail.mailTo('rosa@example.com')).toEqual([]);

    expectRedirect(await submitCode(browser, await newestOutboxCode(browser, 'sign-up')), '/account');
    expectPage(await browser.get('/account'), 200, /A link is on its way to rosa@example.com/);
    const email = await mail.waitForMail('rosa@example.com');
    expect(email.subject).toBe('Confirm your email address for Keyhole');
    expect(email.text).toContain('"rosa"');
    const link = linkPathIn(email);
    expect(link).toMatch(/^\/email\/verify\/[A-Za-z0-9_-]{43}$/);

    // Opening the link changes nothing by itself (a mail scanner fetches links): it asks.
    const stranger = createBrowser(mail.site.app);
    const page = await stranger.get(link);
    expectPage(page, 200, /Confirm your email address/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['cache-control']).toBe('no-store');
    expect((await accountOf('rosa')).email).toBeNull();

    expectPage(
      await stranger.submit(link, link),
      200,
      /rosa@example.com is now the email address of your account/,
    );
    const account = await accountOf('rosa');
    expect(account.email).toBe('rosa@example.com');
    expect(account.emailVerifiedAt).toEqual(mail.site.clock.now());
    expect(account.pendingEmail).toBeNull();
    const events = (await mail.site.audit.forUser(account.id, new Date(0))).map((event) => event.type);
    expect(events).toEqual(expect.arrayContaining(['email_verification_sent', 'email_verified']));
  });

  it('works once: the same link again, or a link edited, is refused with 410 and changes nothing', async () => {
    await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    const link = linkPathIn(await mail.waitForMail('rosa@example.com'));
    const first = createBrowser(mail.site.app);
    const second = createBrowser(mail.site.app);
    // Both pages loaded; both confirm at once: exactly one wins.
    const tokens = [csrfTokenIn((await first.get(link)).text), csrfTokenIn((await second.get(link)).text)];
    const uses = await Promise.all(
      [first, second].map((each, index) => each.agent.post(link).type('form').send({ _csrf: tokens[index] })),
    );
    expect(uses.map((use) => use.status).sort()).toEqual([200, 410]);
    expectPage(await first.get(link), 410, /This link no longer works/);

    const edited = `${link.slice(0, -1)}${link.endsWith('A') ? 'B' : 'A'}`;
    expectPage(await first.get(edited), 410, /This link no longer works/);
    expectPage(await first.get('/email/verify/not-a-token'), 410, /This link no longer works/);
    expectPage(await first.submit('/login', '/email/verify/not-a-token'), 410, /This link no longer works/);
  });

  it('stops working after 24 hours', async () => {
    await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    const link = linkPathIn(await mail.waitForMail('rosa@example.com'));
    mail.site.clock.advanceMinutes(24 * 60);
    expectPage(await browser.get(link), 410, /This link no longer works/);
    expect((await accountOf('rosa')).email).toBeNull();
  });

  it('gives one address to one account: a second account that proves it later is told it is taken', async () => {
    await register(browser, { username: 'rosa', email: 'shared@example.com' });
    const rosasLink = linkPathIn(await mail.waitForMail('shared@example.com'));
    await register(browser, { username: 'sami', email: 'shared@example.com' });
    const samisLink = linkPathIn(await mail.waitForMail('shared@example.com', 2));
    expectPage(await browser.submit(rosasLink, rosasLink), 200, /is now the email address/);
    expectPage(
      await browser.submit(samisLink, samisLink),
      409,
      /Another account already uses this email address/,
    );
    expect((await accountOf('sami')).email).toBeNull();
  });

  it('mails nothing for a sign-up without an address, and refuses an address that is not one', async () => {
    await register(browser, { username: 'rosa' });
    expect(mail.smtp.messages).toEqual([]);
    const page = await browser.submit('/register', '/register', {
      username: 'sami',
      password: 'correct horse battery staple',
      phone: '+12025550161',
      channel: 'sms',
      email: 'sami@example.com\r\nBcc: victim@example.org',
    });
    expectPage(page, 400, /Your email address has characters we cannot accept/);
    const notAnAddress = await browser.submit('/register', '/register', {
      username: 'sami',
      password: 'correct horse battery staple',
      phone: '+12025550161',
      channel: 'sms',
      email: 'sami at example.com',
    });
    expectPage(notAnAddress, 400, /Enter an email address like name@example.com/);
    expect(notAnAddress.text).toContain('value="sami at example.com"');
    expect(await mail.site.users.findByUsername('sami')).toBeNull();
  });
});
