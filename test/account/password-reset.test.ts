import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESET_RESPONSE_FLOOR_MS } from '../../src/account/password-reset.js';
import { createBrowser, csrfTokenIn, type Browser, type Response } from '../helpers/agent.js';
import { consoleCodesPrinted, createTestApp, lastConsoleCode } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import { eventually } from '../helpers/eventually.js';
import { createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, openNewestLink } from '../helpers/security.js';
import { startTestSmtpServer } from '../helpers/smtp-server.js';

/**
 * A forgotten password (issue 11): a one-time link by email, then a code to the account's phone,
 * then a new password. Threats: a read mailbox (or a leaked link) taking the account without the
 * phone; /forgot telling a stranger which accounts and addresses exist, by its words, status or
 * time; someone's mailbox flooded with links; a link used twice, or late; a reset that leaves the
 * attacker's session signed in.
 */

const NEW_PASSWORD = 'a brand new passphrase for ada';
const RESET_SUBJECT = 'Reset your password for Keyhole';

describe('resetting a forgotten password', () => {
  let mail: MailTestApp;
  let browser: Browser;
  beforeEach(async () => {
    // Behind a proxy on loopback, so a test can speak from several client addresses.
    mail = await createMailTestApp({ env: { TRUST_PROXY: 'loopback' } });
    browser = createBrowser(mail.site.app);
  });
  afterEach(() => mail.close());

  const site = () => mail.site;
  const accountOf = async (username: string) => (await site().users.findByUsername(username))!;
  const resetMailsTo = (address: string) =>
    mail.mailTo(address).filter((email) => email.subject === RESET_SUBJECT);
  const auditTypes = async (type: string) =>
    (await site().audit.recent(500)).filter((event) => event.type === type);

  /** An account whose email address is verified, as a person gets one: sign-up, then the link. */
  async function accountWithEmail(username: string, email: string): Promise<TestAccount> {
    const account = await register(browser, { username, email });
    const link = linkPathIn(await mail.waitForMail(email));
    expectPage(await browser.submit(link, link), 200, /is now the email address/);
    return account;
  }

  /** The /forgot form, sent from `from` (a client address behind the proxy). */
  async function forgot(identifier: string, options: { from?: string; as?: Browser } = {}) {
    const agent = (options.as ?? browser).agent;
    const from = options.from ?? '203.0.113.10';
    const page = await agent.get('/forgot').set('X-Forwarded-For', from);
    expectPage(page, 200, /Reset your password/);
    const started = performance.now();
    const res = await agent
      .post('/forgot')
      .set('X-Forwarded-For', from)
      .type('form')
      .send({ identifier, _csrf: csrfTokenIn(page.text) });
    return { res, ms: performance.now() - started };
  }

  /** Waits for the newest reset email to `address` (the `count`th in all) and answers its link. */
  async function resetLinkFor(address: string, count = 1): Promise<string> {
    await eventually(async () => expect(resetMailsTo(address).length).toBeGreaterThanOrEqual(count));
    const emails = resetMailsTo(address);
    expect(emails).toHaveLength(count);
    return linkPathIn(emails.at(-1)!);
  }

  /** Nothing more arrives: long enough for a send that was started to have landed on loopback. */
  const quietMoment = () => sleep(300);

  /** The link, then its Continue button: leaves the browser on the reset code page. */
  async function useLink(link: string, as = browser) {
    expectRedirect(await as.submit(link, link), '/verify');
  }

  const submitNewPassword = (as = browser, password = NEW_PASSWORD, again = password) =>
    as.submit('/reset/password', '/reset/password', { new_password: password, confirm_password: again });

  it('resets with the link and the phone code, ends every session, and leaves the person to log in', async () => {
    const ada = await accountWithEmail('ada', 'ada@example.com');
    // Someone who knew the old password is signed in elsewhere, twice.
    const intruder = createBrowser(site().app);
    const intruderTab = createBrowser(site().app);
    await logIn(site(), intruder, ada);
    await logIn(site(), intruderTab, ada);
    expectPage(await intruder.get('/account'), 200);

    expect(visibleText((await browser.get('/login')).text)).toContain('Forgot your password?');
    expect((await browser.get('/login')).text).toContain('href="/forgot"');

    const { res } = await forgot('ada', { from: '203.0.113.77' });
    expectPage(res, 200, /Check your email/);
    expect(visibleText(res.text)).toContain('The link works for 30 minutes');

    const link = await resetLinkFor('ada@example.com');
    expect(link).toMatch(/^\/reset\/[A-Za-z0-9_-]{43}$/);
    const email = resetMailsTo('ada@example.com')[0]!;
    expect(email.text).toContain('Keyhole');
    expect(email.text).toContain('within 30 minutes');
    expect(email.text).toContain('from the address 203.0.113.77');
    expect(email.text).toContain('code we send to your phone');
    expect(email.html).toContain(link);
    // No code of any kind travels by email.
    expect(email.text).not.toMatch(/\b\d{6}\b/);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(0);

    // Opening the link changes nothing (mail scanners fetch links): it asks to continue.
    const linkPage = await browser.get(link);
    expectPage(linkPage, 200, /Continue/);
    expect(linkPage.headers['referrer-policy']).toBe('no-referrer');
    expect(linkPage.headers['cache-control']).toBe('no-store');
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(0);

    await useLink(link);
    expectPage(await browser.get('/verify'), 200, /Enter your reset code/);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(1);
    expectRedirect(await submitCode(browser, lastConsoleCode(site().printed, 'reset')), '/reset/password');

    const form = await browser.get('/reset/password');
    expectPage(form, 200, /Choose a new password/);
    expect(form.headers['referrer-policy']).toBe('no-referrer');
    expectRedirect(await submitNewPassword(), '/login');

    // No automatic login: the login page says so, and the account page wants a login.
    expect(visibleText((await browser.get('/login')).text)).toContain(
      'Your password was changed. Log in with it.',
    );
    expectRedirect(await browser.get('/account'), '/login?next=%2Faccount');
    // Every session of the account ended, on every browser.
    expectRedirect(await intruder.get('/account'), '/login?next=%2Faccount');
    expectRedirect(await intruderTab.get('/account'), '/login?next=%2Faccount');
    expect(await site().stores.accountSessions.listForUser((await accountOf('ada')).id)).toEqual([]);

    // The old password no longer works; the new one does, with its login code.
    expectPage(await submitPassword(createBrowser(site().app), ada), 401, /Invalid username or password/);
    await logIn(site(), createBrowser(site().app), { ...ada, password: NEW_PASSWORD });

    const notice = await mail.waitForMail('ada@example.com', 3);
    expect(notice.subject).toBe('Your password was reset');
    expect((await auditTypes('password_reset_requested')).length).toBe(1);
    expect((await auditTypes('password_reset_verified')).length).toBe(1);
    expect((await auditTypes('password_reset'))[0]?.detail).toBe('2 sessions ended');
    // The link is spent.
    expectPage(await browser.get(link), 410, /This link no longer works/);
  });

  it('answers the same, with the same status and at least the same time, whoever is asked about', async () => {
    // Threat: a stranger learning which usernames and addresses have accounts (and which can reset).
    await accountWithEmail('ada', 'ada@example.com');
    await register(browser, { username: 'bea' });
    // Cid gave an address but never opened its link: it is not the account's address.
    await register(browser, { username: 'cid', email: 'cid@example.com' });
    await mail.waitForMail('cid@example.com');
    // Dot never proved its phone (an address verified by other means, to be sure it is the phone
    // rule that holds): no reset for an account that cannot log in.
    const dot = (await site().users.create({
      username: 'dot',
      passwordHash: 'x',
      phone: '+12025550188',
      preferredChannel: 'sms',
    }))!;
    await site().users.setPendingEmail(dot.id, 'dot@example.com');
    await site().users.confirmEmail(dot.id, 'dot@example.com');

    const asked = [
      'nobody',
      'nobody@example.org',
      'bea',
      'cid@example.com',
      'cid',
      'dot',
      'ada',
      'ada@example.com',
    ];
    const answers: Array<{ res: Response; ms: number }> = [];
    for (const [index, identifier] of asked.entries()) {
      // From a new address each (five requests an hour each), in a browser of its own.
      answers.push(
        await forgot(identifier, { from: `203.0.113.${index + 1}`, as: createBrowser(site().app) }),
      );
    }
    const withoutToken = (html: string) => html.replace(/name="_csrf" value="[^"]+"/g, '');
    for (const { res, ms } of answers) {
      expectPage(res, 200, /Check your email/);
      expect(withoutToken(res.text)).toBe(withoutToken(answers[0]!.res.text));
      // The page waits out a floor whatever it did, so the time says nothing either.
      expect(ms).toBeGreaterThanOrEqual(RESET_RESPONSE_FLOOR_MS - 5);
    }
    // Only the real account, asked about twice, got a link (within its minute, one).
    expect(await resetLinkFor('ada@example.com')).toMatch(/^\/reset\//);
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(1);
    expect(mail.mailTo('cid@example.com')).toHaveLength(1);
    expect(mail.mailTo('dot@example.com')).toHaveLength(0);
    expect(await auditTypes('password_reset_requested')).toHaveLength(1);
  });

  it('never waits for the mail server: a stuck one makes the answer no slower', async () => {
    const stuck = await startTestSmtpServer({ hang: 'greeting' });
    const slowSite = await createTestApp({
      env: { EMAIL_PROVIDER: 'smtp', SMTP_URL: stuck.url, EMAIL_FROM: 'Keyhole <no-reply@example.com>' },
    });
    try {
      const other = createBrowser(slowSite.app);
      await register(other, { username: 'ada' });
      const ada = (await slowSite.users.findByUsername('ada'))!;
      await slowSite.users.setPendingEmail(ada.id, 'ada@example.com');
      await slowSite.users.confirmEmail(ada.id, 'ada@example.com');
      const page = await other.get('/forgot');
      const started = performance.now();
      const res = await other.agent
        .post('/forgot')
        .type('form')
        .send({ identifier: 'ada', _csrf: csrfTokenIn(page.text) });
      const ms = performance.now() - started;
      expectPage(res, 200, /Check your email/);
      // The mail server would keep it 3 seconds (its greeting deadline) if the page waited for it.
      expect(ms).toBeLessThan(RESET_RESPONSE_FLOOR_MS + 1000);
      expect(
        (await slowSite.audit.recent(50)).some((event) => event.type === 'password_reset_requested'),
      ).toBe(true);
    } finally {
      await slowSite.close();
      await stuck.close();
    }
  });

  it('sends one link per account per minute; the extra requests send nothing and look the same', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    expectPage((await forgot('ada')).res, 200, /Check your email/);
    const first = await resetLinkFor('ada@example.com');
    site().clock.advance(59_000);
    expectPage((await forgot('ada@example.com', { from: '203.0.113.20' })).res, 200, /Check your email/);
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(1);
    // The first link still works: the dropped request voided nothing.
    expectPage(await browser.get(first), 200, /Continue/);

    site().clock.advance(1_000);
    expectPage((await forgot('ada')).res, 200, /Check your email/);
    expect(await resetLinkFor('ada@example.com', 2)).not.toBe(first);
  });

  it('voids the earlier link when a new one is sent', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    const first = await resetLinkFor('ada@example.com');
    site().clock.advanceMinutes(2);
    await forgot('ada');
    const second = await resetLinkFor('ada@example.com', 2);
    expectPage(await browser.get(first), 410, /This link no longer works/);
    expectPage(await browser.submit(second, first), 410, /This link no longer works/);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(0);
    expectPage(await browser.get(second), 200, /Continue/);
  });

  describe('voids the links already sent', () => {
    /** Ada signed in and past the settings confirmation; a stranger had a reset link sent to her. */
    async function linkSentWhileAdaIsSignedIn() {
      const account = await accountWithEmail('ada', 'ada@example.com');
      const owner = createBrowser(site().app);
      await logIn(site(), owner, account);
      const stranger = createBrowser(site().app);
      await forgot('ada', { as: stranger });
      const link = await resetLinkFor('ada@example.com');
      await confirmSettings(site(), owner);
      return { account, owner, stranger, link };
    }
    // Threat: a link sent to a mailbox that was the account's way back in, still good after the
    // person moved their email away from it or chose a new password.
    it('when the password is changed', async () => {
      const { account, owner, stranger, link } = await linkSentWhileAdaIsSignedIn();
      expectRedirect(
        await owner.submit('/account/security', '/account/security/password', {
          current_password: account.password,
          new_password: NEW_PASSWORD,
        }),
        '/account/security',
      );
      expectPage(await stranger.get(link), 410, /This link no longer works/);
    });

    it('when the email is removed, and they do not come back with the next address', async () => {
      const { owner, stranger, link } = await linkSentWhileAdaIsSignedIn();
      expectRedirect(
        await owner.submit('/account/security', '/account/security/email/remove'),
        '/account/security',
      );
      expectPage(await stranger.get(link), 410, /This link no longer works/);
      expectRedirect(
        await owner.submit('/account/security', '/account/security/email', { email: 'ada@example.org' }),
        '/account/security',
      );
      await openNewestLink(mail, createBrowser(site().app), 'ada@example.org');
      expectPage(await stranger.get(link), 410, /This link no longer works/);
    });

    it('when another address replaces the email', async () => {
      const { owner, stranger, link } = await linkSentWhileAdaIsSignedIn();
      expectRedirect(
        await owner.submit('/account/security', '/account/security/email', { email: 'ada@example.org' }),
        '/account/security',
      );
      await openNewestLink(mail, createBrowser(site().app), 'ada@example.org');
      expect((await accountOf('ada')).email).toBe('ada@example.org');
      expectPage(await stranger.get(link), 410, /This link no longer works/);
    });
  });

  it('takes 5 requests an hour from one address, then answers 429 there (and only there)', async () => {
    // Threat: one client using /forgot to mail many people, or to probe many names.
    await accountWithEmail('ada', 'ada@example.com');
    for (let request = 0; request < 5; request += 1) {
      expectPage((await forgot(`nobody${request}`, { from: '198.51.100.9' })).res, 200, /Check your email/);
    }
    const refused = (await forgot('ada', { from: '198.51.100.9' })).res;
    expectPage(refused, 429, /Too many reset requests from your network/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(3600);
    // The same answer for a name that does not exist: the 429 is about the address alone.
    const refusedUnknown = (await forgot('nobody', { from: '198.51.100.9' })).res;
    expect(refusedUnknown.status).toBe(429);
    expect(visibleText(refusedUnknown.text)).toBe(visibleText(refused.text));
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(0);

    // Another address is not held back; and an hour later this one may ask again.
    expectPage((await forgot('nobody', { from: '198.51.100.10' })).res, 200, /Check your email/);
    site().clock.advanceMinutes(60);
    expectPage((await forgot('ada', { from: '198.51.100.9' })).res, 200, /Check your email/);
    await resetLinkFor('ada@example.com');
  });

  it('lets exactly one of two racing uses of a link through', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    const link = await resetLinkFor('ada@example.com');
    const first = createBrowser(site().app);
    const second = createBrowser(site().app);
    const tokens = [csrfTokenIn((await first.get(link)).text), csrfTokenIn((await second.get(link)).text)];
    const uses = await Promise.all(
      [first, second].map((each, index) => each.agent.post(link).type('form').send({ _csrf: tokens[index] })),
    );
    expect(uses.map((use) => use.status).sort()).toEqual([303, 410]);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(1);
    const loser = uses[0]!.status === 410 ? first : second;
    expectRedirect(await loser.get('/reset/password'), '/forgot');
    expectRedirect(await loser.get('/verify'), '/login');
  });

  it('stops working 30 minutes after it was sent', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    const link = await resetLinkFor('ada@example.com');
    site().clock.advance(30 * 60_000 - 1_000);
    expectPage(await browser.get(link), 200, /Continue/);
    site().clock.advance(1_000);
    const page = await browser.get(link);
    expectPage(page, 410, /This link no longer works/);
    expect(page.text).toContain('href="/forgot"');
    expectPage(await browser.submit('/forgot', link), 410, /This link no longer works/);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(0);
    // A link edited, or not a token at all, is the same dead end.
    expectPage(await browser.get('/reset/not-a-token'), 410, /This link no longer works/);
  });

  it('never takes a login, settings or admin code for the reset, nor a reset code for a login', async () => {
    const ada = await accountWithEmail('ada', 'ada@example.com');
    await site().grantAdmin('ada');
    // Past the window that counts the sign-up code: five codes follow, the most one window takes.
    site().clock.advanceMinutes(16);
    // The same account's fresh, unused codes of the other scopes, from another browser.
    const other = createBrowser(site().app);
    await logIn(site(), other, ada);
    expectRedirect(await other.submit('/admin', '/admin/step-up'), '/verify');
    const adminCode = lastConsoleCode(site().printed, 'admin');
    expectRedirect(await other.submit('/account/security', '/account/security/confirm'), '/verify');
    const settingsCode = lastConsoleCode(site().printed, 'settings');
    const loginBrowser = createBrowser(site().app);
    expectRedirect(await submitPassword(loginBrowser, ada), '/verify');
    const loginCode = lastConsoleCode(site().printed, 'login');

    await forgot('ada');
    await useLink(await resetLinkFor('ada@example.com'));
    const resetCode = lastConsoleCode(site().printed, 'reset');
    for (const code of [loginCode, settingsCode, adminCode]) {
      expectPage(await submitCode(browser, code === resetCode ? wrongFor(code) : code), 400, /not right/);
    }
    expectRedirect(await browser.get('/reset/password'), '/forgot');

    // The reset code is no login code...
    expectPage(
      await submitCode(loginBrowser, resetCode === loginCode ? wrongFor(resetCode) : resetCode),
      400,
      /not right/,
    );
    // ...nor a settings code.
    expectPage(
      await submitCode(other, resetCode === settingsCode ? wrongFor(resetCode) : resetCode),
      400,
      /not right/,
    );
    // Each works where it belongs.
    expectRedirect(await submitCode(browser, resetCode), '/reset/password');
    expectRedirect(await submitCode(loginBrowser, loginCode), '/account');
  });

  it('never reaches the new password without the code', async () => {
    const ada = await accountWithEmail('ada', 'ada@example.com');
    const before = (await accountOf('ada')).passwordHash;
    // A visitor, and a signed-in person, have no reset to finish.
    expectRedirect(await browser.get('/reset/password'), '/forgot');
    const signedIn = createBrowser(site().app);
    await logIn(site(), signedIn, ada);
    expectRedirect(await signedIn.get('/reset/password'), '/forgot');
    const token = csrfTokenIn((await signedIn.get('/account')).text);
    const post = await signedIn.agent
      .post('/reset/password')
      .type('form')
      .send({ new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD, _csrf: token });
    expectRedirect(post, '/forgot');

    // The link alone: still on the code.
    await forgot('ada');
    await useLink(await resetLinkFor('ada@example.com'));
    expectRedirect(await browser.get('/reset/password'), '/forgot');
    expect((await accountOf('ada')).passwordHash).toBe(before);
    expect(await auditTypes('password_reset')).toEqual([]);
  });

  it('asks for a password that registration would take, typed twice, and keeps the reset open meanwhile', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    await useLink(await resetLinkFor('ada@example.com'));
    await submitCode(browser, lastConsoleCode(site().printed, 'reset'));
    expectPage(await submitNewPassword(browser, 'short'), 400, /at least 8 characters/);
    expectPage(await submitNewPassword(browser, 'password123'), 400, /most common ones/);
    const mismatch = await submitNewPassword(browser, NEW_PASSWORD, `${NEW_PASSWORD}!`);
    expectPage(mismatch, 400, /The two passwords are not the same/);
    expect(mismatch.text).toMatch(/<title>Error: /);
    expectRedirect(await submitNewPassword(), '/login');
    // Once done, the page is gone.
    expectRedirect(await browser.get('/reset/password'), '/forgot');
  });

  it('gives the new password 10 minutes after the code, then asks to start again', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    await useLink(await resetLinkFor('ada@example.com'));
    await submitCode(browser, lastConsoleCode(site().printed, 'reset'));
    // The form is open; the person comes back to it ten minutes later.
    const token = csrfTokenIn((await browser.get('/reset/password')).text);
    site().clock.advanceMinutes(10);
    const late = await browser.agent
      .post('/reset/password')
      .type('form')
      .send({ new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD, _csrf: token });
    expectRedirect(late, '/forgot');
    expect(visibleText((await browser.get('/forgot')).text)).toContain('Your reset took too long');
    expect(await auditTypes('password_reset')).toEqual([]);
  });

  it('sends no link for a disabled account (the same page), and a link sent before leads nowhere', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    const link = await resetLinkFor('ada@example.com');
    expect(await site().users.disable((await accountOf('ada')).id)).toBe('disabled');

    site().clock.advanceMinutes(2);
    expectPage((await forgot('ada')).res, 200, /Check your email/);
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(1);
    expectPage(await browser.get(link), 410, /This link no longer works/);
    expectPage(await browser.submit('/forgot', link), 410, /This link no longer works/);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(0);
  });

  it('takes no reset code for an account disabled after its link was used', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await forgot('ada');
    await useLink(await resetLinkFor('ada@example.com'));
    const code = lastConsoleCode(site().printed, 'reset');
    expect(await site().users.disable((await accountOf('ada')).id)).toBe('disabled');
    expectRedirect(await browser.submit('/forgot', '/verify', { code }), '/forgot');
    expectRedirect(await browser.get('/reset/password'), '/forgot');
    expect(await auditTypes('password_reset_verified')).toEqual([]);
  });

  it('goes to the code page even when no code may be sent now, which says why', async () => {
    // Five reset codes in a quarter of an hour: the account's allowance is spent.
    await accountWithEmail('ada', 'ada@example.com');
    site().clock.advanceMinutes(16);
    await forgot('ada');
    await useLink(await resetLinkFor('ada@example.com'));
    for (let resend = 0; resend < 4; resend += 1) {
      site().clock.advance(31_000);
      expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
    }
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(5);
    site().clock.advance(60_000);
    await forgot('ada');
    const fresh = createBrowser(site().app);
    await useLink(await resetLinkFor('ada@example.com', 2), fresh);
    expect(consoleCodesPrinted(site().printed, 'reset')).toBe(5);
    expectPage(await fresh.get('/verify'), 200, /Too many codes requested/);
  });

  it('refuses an empty form with a message', async () => {
    const { res } = await forgot('   ');
    expectPage(res, 400, /Enter your username or email address/);
    expect(res.text).toMatch(/<title>Error: /);
  });

  it('ends a reset after ten wrong codes, and never pauses the owner’s logins', async () => {
    const ada = await accountWithEmail('ada', 'ada@example.com');
    // Whoever reads the mailbox, without the phone: a link, then two codes, five wrong tries each.
    expect((await forgot('ada')).res.status).toBe(200);
    await useLink(await resetLinkFor('ada@example.com'));
    for (let round = 0; round < 2; round += 1) {
      if (round === 1) {
        site().clock.advance(31_000);
        expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
      }
      for (let guess = 0; guess < 5; guess += 1) {
        const res = await submitCode(browser, wrongFor(lastConsoleCode(site().printed, 'reset')));
        if (round === 1 && guess === 4) {
          expectRedirect(res, '/forgot');
          expectPage(await browser.get('/forgot'), 200, /This reset has ended: ask for a new link/);
        } else {
          expect(res.status).toBe(400);
        }
      }
    }
    // More links change nothing for the owner either: each reset counts on its own.
    for (let link = 2; link <= 3; link += 1) {
      site().clock.advanceMinutes(2);
      expect((await forgot('ada')).res.status).toBe(200);
      await useLink(await resetLinkFor('ada@example.com', link));
      for (let guess = 0; guess < 5; guess += 1) {
        await submitCode(browser, wrongFor(lastConsoleCode(site().printed, 'reset')));
      }
    }
    // The owner logs in at once: neither a pause nor a step toward a suspension.
    await logIn(site(), createBrowser(site().app), ada);
    expect(await auditTypes('code_entry_suspended')).toEqual([]);
  });

  it('leaves the owner a link after a stranger used up what one address may ask for the account', async () => {
    // Threat: a stranger who knows the username asking for links, a minute apart, to use up the
    // account's day, so that the owner's own request sends nothing (while the page says it did).
    await accountWithEmail('ada', 'ada@example.com');
    for (let request = 0; request < 5; request += 1) {
      site().clock.advance(60_000);
      expectPage((await forgot('ada', { from: '198.51.100.9' })).res, 200, /Check your email/);
    }
    await resetLinkFor('ada@example.com', 3);
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(3);

    site().clock.advanceMinutes(60);
    expectPage((await forgot('ada', { from: '203.0.113.10' })).res, 200, /Check your email/);
    const owners = await resetLinkFor('ada@example.com', 4);
    expectPage(await browser.get(owners), 200, /Continue/);
  });

  it('sends 3 links a day per account to one address (an IPv6 /64 as one), then quietly nothing', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    await accountWithEmail('bea', 'bea@example.com');
    for (const host of ['1', '2', '3']) {
      site().clock.advanceMinutes(2);
      expectPage((await forgot('ada', { from: `2001:db8:1:2::${host}` })).res, 200, /Check your email/);
    }
    const third = await resetLinkFor('ada@example.com', 3);
    site().clock.advanceMinutes(2);
    expectPage((await forgot('ada', { from: '2001:db8:1:2::4' })).res, 200, /Check your email/);
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(3);
    // The dropped request voided nothing, and held back no one else for its minute.
    expectPage(await browser.get(third), 200, /Continue/);
    expectPage((await forgot('ada', { from: '2001:db8:1:3::1' })).res, 200, /Check your email/);
    await resetLinkFor('ada@example.com', 4);
    // Per account: the same network may still ask for another account.
    expectPage((await forgot('bea', { from: '2001:db8:1:2::5' })).res, 200, /Check your email/);
    await resetLinkFor('bea@example.com');

    // A day later that network may ask for ada again.
    site().clock.advanceMinutes(24 * 60);
    expectPage((await forgot('ada', { from: '2001:db8:1:2::6' })).res, 200, /Check your email/);
    await resetLinkFor('ada@example.com', 5);
  });

  it('counts a request that sent nothing toward no allowance of the account', async () => {
    await accountWithEmail('ada', 'ada@example.com');
    expectPage((await forgot('ada', { from: '203.0.113.10' })).res, 200, /Check your email/);
    // Within the owner's minute: dropped, and handed back, so this address still has its 3.
    for (let request = 0; request < 2; request += 1) {
      expectPage((await forgot('ada', { from: '198.51.100.9' })).res, 200, /Check your email/);
    }
    for (let request = 0; request < 3; request += 1) {
      site().clock.advanceMinutes(2);
      expectPage((await forgot('ada', { from: '198.51.100.9' })).res, 200, /Check your email/);
    }
    await resetLinkFor('ada@example.com', 4);
  });

  it('sends at most 10 links a day to one account, however many addresses ask', async () => {
    // Threat: a stranger with many addresses filling the owner's mailbox.
    await accountWithEmail('ada', 'ada@example.com');
    for (let request = 0; request < 11; request += 1) {
      site().clock.advanceMinutes(2);
      expect((await forgot('ada', { from: `203.0.113.${20 + request}` })).res.status).toBe(200);
    }
    await resetLinkFor('ada@example.com', 10);
    await quietMoment();
    expect(resetMailsTo('ada@example.com')).toHaveLength(10);

    site().clock.advanceMinutes(24 * 60);
    expect((await forgot('ada', { from: '203.0.113.10' })).res.status).toBe(200);
    await resetLinkFor('ada@example.com', 11);
  });

  it('changes no account setting from the reset code page: another channel is for this code only', async () => {
    const ada = await accountWithEmail('ada', 'ada@example.com');
    expect((await forgot('ada')).res.status).toBe(200);
    await useLink(await resetLinkFor('ada@example.com'));
    site().clock.advance(31_000);
    expectRedirect(await browser.submit('/verify', '/verify/resend', { channel: 'voice' }), '/verify');
    expect((await accountOf('ada')).preferredChannel).toBe(ada.channel);
  });
});
