import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/eventually.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PASSWORD_CHANGE_FAILURES_PER_HOUR } from '../../src/account/password-change.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { logIn, register, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, openNewestLink, sessionIdOf } from '../helpers/security.js';
import { createStallingHasher, type StallingHasher } from '../helpers/held-hasher.js';

const NEW_PASSWORD = 'a new and rather long passphrase';

/**
 * Changing the password on /account/security (issue 11). Threats: someone who learnt the old
 * password keeps a session open after the owner changes it; a session left open on a shared
 * computer is used to guess the password (or to change it without knowing it); the change goes
 * unnoticed by the owner.
 */
describe('POST /account/security/password', () => {
  let mail: MailTestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    mail = await createMailTestApp();
    browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await openNewestLink(mail, createBrowser(mail.site.app), 'rosa@example.com');
    await logIn(mail.site, browser, account);
  });
  afterEach(() => mail.close());

  const changePassword = (fields: Record<string, string>) =>
    browser.submit('/account/security', '/account/security/password', fields);

  it('changes it: every other session ends, this one stays under a new id, and a notice arrives by email', async () => {
    const other = createBrowser(mail.site.app);
    await logIn(mail.site, other, account);
    expectPage(await other.get('/account'), 200);
    await confirmSettings(mail.site, browser);
    const idBefore = sessionIdOf(browser);

    const res = await changePassword({ current_password: account.password, new_password: NEW_PASSWORD });
    expectRedirect(res, '/account/security');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(sessionIdOf(browser)).not.toBe(idBefore);
    const page = await browser.get('/account/security');
    expectPage(page, 200, /Your password was changed\. 1 other session was ended\./);
    // Still confirmed: the same person, who has just proved the new password is theirs.
    expect(page.text).toContain('You can change your settings until');

    // The other browser is out, at once.
    expectRedirect(await other.get('/account'), '/login?next=%2Faccount');
    // The old password no longer logs in; the new one does.
    expectPage(
      await submitPassword(createBrowser(mail.site.app), account),
      401,
      /Invalid username or password/,
    );
    expectRedirect(
      await submitPassword(createBrowser(mail.site.app), { ...account, password: NEW_PASSWORD }),
      '/verify',
    );

    const notice = await mail.waitForMail('rosa@example.com', 2);
    expect(notice.subject).toBe('Your password was changed');
    expect(notice.text).toContain('every other session was ended');
    const user = (await mail.site.users.findByUsername('rosa'))!;
    // The notice's audit line is written once the mail server has answered, a moment after it has the message.
    const events = await eventually(async () => {
      const found = await mail.site.audit.forUser(user.id, new Date(0));
      expect(found.map((event) => event.type)).toEqual(
        expect.arrayContaining(['password_changed', 'notice_sent']),
      );
      return found;
    });
    expect(events.find((event) => event.type === 'password_changed')?.detail).toBe('1 other session ended');
  });

  it('needs a fresh settings code: without one, or 5 minutes after it, the person is sent to confirm', async () => {
    const withoutCode = await changePassword({
      current_password: account.password,
      new_password: NEW_PASSWORD,
    });
    expectRedirect(withoutCode, '/account/security');
    expectPage(await browser.get('/account/security'), 200, /confirm it is you with a new code/);

    await confirmSettings(mail.site, browser);
    mail.site.clock.advanceMinutes(5);
    expectRedirect(
      await changePassword({ current_password: account.password, new_password: NEW_PASSWORD }),
      '/account/security',
    );
    const user = (await mail.site.users.findByUsername('rosa'))!;
    expect(await mail.site.users.findById(user.id)).toMatchObject({ passwordHash: user.passwordHash });
    expect((await mail.site.audit.forUser(user.id, new Date(0))).map((event) => event.type)).not.toContain(
      'password_changed',
    );
  });

  it('refuses a wrong current password with a field error, and stops guessing after a few', async () => {
    await confirmSettings(mail.site, browser);
    const wrong = await changePassword({ current_password: 'not my password', new_password: NEW_PASSWORD });
    expectPage(wrong, 400, /That is not your current password/);
    expect(wrong.text).toMatch(/<title>Error: Security settings/);
    expect(wrong.text).toContain('id="current_password" name="current_password" aria-invalid="true"');
    // The typed passwords are never sent back.
    expect(wrong.text).not.toContain('not my password');
    expect(wrong.text).not.toContain(NEW_PASSWORD);

    for (let attempt = 2; attempt <= PASSWORD_CHANGE_FAILURES_PER_HOUR; attempt += 1) {
      expectPage(
        await changePassword({ current_password: `wrong ${attempt}`, new_password: NEW_PASSWORD }),
        400,
      );
    }
    // The limit is the account's: the right password, from another browser and session, waits too.
    const right = await changePassword({ current_password: account.password, new_password: NEW_PASSWORD });
    expectPage(right, 429, /Too many wrong passwords\. Try again in 60 minutes/);
    expect(right.headers['retry-after']).toBe('3600');
    const second = createBrowser(mail.site.app);
    await logIn(mail.site, second, account);
    await confirmSettings(mail.site, second);
    expectPage(
      await second.submit('/account/security', '/account/security/password', {
        current_password: account.password,
        new_password: NEW_PASSWORD,
      }),
      429,
    );

    // An hour on (the session has long timed out: log in again), the right password works.
    mail.site.clock.advanceMinutes(60);
    await logIn(mail.site, browser, account);
    await confirmSettings(mail.site, browser);
    expectRedirect(
      await changePassword({ current_password: account.password, new_password: NEW_PASSWORD }),
      '/account/security',
    );
    const user = (await mail.site.users.findByUsername('rosa'))!;
    const failures = (await mail.site.audit.forUser(user.id, new Date(0))).filter(
      (event) => event.type === 'password_change_failed',
    );
    expect(failures).toHaveLength(PASSWORD_CHANGE_FAILURES_PER_HOUR);
  });

  it('takes a new password only by the rules of registration, and never the same one', async () => {
    await confirmSettings(mail.site, browser);
    expectPage(
      await changePassword({ current_password: account.password, new_password: 'short' }),
      400,
      /Choose a new password of at least 8 characters/,
    );
    expectPage(
      await changePassword({ current_password: account.password, new_password: 'password123' }),
      400,
      /This new password is one of the most common ones/,
    );
    expectPage(
      await changePassword({ current_password: account.password, new_password: account.password }),
      400,
      /Choose a new password, different from your current one/,
    );
    expectPage(await changePassword({ new_password: NEW_PASSWORD }), 400, /Enter your current password/);
    // A list where one value is expected, and control characters: a clear 400, never a crash.
    const list = await browser.agent
      .post('/account/security/password')
      .type('form')
      .send(
        `current_password=a&current_password=b&new_password=x&_csrf=${encodeURIComponent(
          (await browser.get('/account/security')).text.match(/name="_csrf" value="([^"]+)"/)![1]!,
        )}`,
      );
    expectPage(list, 400);
    const user = (await mail.site.users.findByUsername('rosa'))!;
    expect((await mail.site.audit.forUser(user.id, new Date(0))).map((event) => event.type)).not.toContain(
      'password_changed',
    );
  });

  it('sends no notice to an account without a verified email, and is behind the login', async () => {
    const sami = await register(createBrowser(mail.site.app), {
      username: 'sami',
      email: 'sami@example.com',
    });
    // Sami never opened the link: the address only waits, and gets nothing but that link.
    const samisBrowser = createBrowser(mail.site.app);
    await logIn(mail.site, samisBrowser, sami);
    await confirmSettings(mail.site, samisBrowser);
    expectRedirect(
      await samisBrowser.submit('/account/security', '/account/security/password', {
        current_password: sami.password,
        new_password: NEW_PASSWORD,
      }),
      '/account/security',
    );
    await sleep(300);
    expect(mail.mailTo('sami@example.com').map((email) => email.subject)).toEqual([
      'Confirm your email address for Keyhole',
    ]);

    const visitor = createBrowser(mail.site.app);
    expectRedirect(
      await visitor.submit('/login', '/account/security/password', {
        current_password: account.password,
        new_password: NEW_PASSWORD,
      }),
      '/login?next=%2Faccount%2Fsecurity%2Fpassword',
    );
  });
});

// Threat: a password check that waited in the hashing queue past the end of the hour its wrong
// password was counted in, then answered busy, handed that count back to the *next* hour: one more
// guess there than the limit allows.
describe('a password change answered busy after its hour of wrong passwords ended', () => {
  const STALLED = 'a password check that waits past the hour';
  let site: TestApp;
  let stalling: StallingHasher;

  beforeEach(async () => {
    stalling = createStallingHasher(STALLED);
    site = await createTestApp({ hasher: stalling.hasher });
  });
  afterEach(() => site.close());

  const changePasswordIn = (browser: Browser, current: string) =>
    browser.submit('/account/security', '/account/security/password', {
      current_password: current,
      new_password: NEW_PASSWORD,
    });

  it('does not give the next hour a free guess', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'rosa' });
    await logIn(site, browser, account);
    await confirmSettings(site, browser);
    const stalled = changePasswordIn(browser, STALLED);
    await vi.waitFor(() => expect(stalling.answerStalledBusy).toBeDefined());

    // Its count was taken in the hour that opened with it; a wrong password in the next hour
    // comes before the busy answer.
    site.clock.advanceMinutes(60);
    const later = createBrowser(site.app);
    await logIn(site, later, account);
    await confirmSettings(site, later);
    expectPage(await changePasswordIn(later, 'wrong 1'), 400);
    stalling.answerStalledBusy!();
    expectPage(await stalled, 503);

    for (let attempt = 2; attempt <= PASSWORD_CHANGE_FAILURES_PER_HOUR; attempt += 1) {
      expectPage(await changePasswordIn(later, `wrong ${attempt}`), 400);
    }
    expectPage(await changePasswordIn(later, account.password), 429, /Too many wrong passwords/);
  });
});
