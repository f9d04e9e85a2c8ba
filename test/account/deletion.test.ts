import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestClock } from '../helpers/clock.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';

/**
 * Deleting an account (issue 11). Threats: a session left open on a shared computer used to
 * delete the account (a settings code and the typed name are needed, and with an email, a link in
 * that mailbox opened in the browser that asked); a mail scanner or a copy of the email deleting
 * it (a POST, in that browser only); a second try racing the first; and a deletion that leaves the
 * person's name, number or address behind, or hands its history to whoever registers next.
 */
describe('deleting an account', () => {
  let folder: string;
  let mail: MailTestApp;
  let site: TestApp;
  let browser: Browser;
  beforeEach(async () => {
    folder = mkdtempSync(join(tmpdir(), 'mfa-deletion-'));
    mail = await createMailTestApp({ databasePath: join(folder, 'app.db'), clock: createTestClock() });
    site = mail.site;
    browser = createBrowser(site.app);
  });
  afterEach(async () => {
    await mail.close();
    rmSync(folder, { recursive: true, force: true });
  });

  const accountNamed = (username: string) => site.users.findByUsername(username);

  /** Registered, its email proven by its link, and signed in in `browser`. */
  async function verifiedAccount(overrides: Partial<TestAccount>): Promise<TestAccount> {
    const account = await register(browser, overrides);
    if (overrides.email) {
      const link = linkPathIn(await mail.waitForMail(overrides.email));
      const opener = createBrowser(site.app);
      expectPage(await opener.submit(link, link), 200, /is now the email address of your account/);
    }
    await logIn(site, browser, account);
    return account;
  }

  /** A settings code on the way from the deletion page, entered: back on the deletion page. */
  async function confirmItIsMe(who: Browser) {
    const page = await who.get('/account/delete');
    const sent = await who.agent
      .post('/account/security/confirm')
      .type('form')
      .send({ returnTo: '/account/delete', _csrf: csrfTokenIn(page.text) });
    expectRedirect(sent, '/verify');
    expectRedirect(await submitCode(who, lastConsoleCode(site.printed, 'settings')), '/account/delete');
  }

  const typeName = (who: Browser, username: string) =>
    who.submit('/account/delete', '/account/delete', { username });

  /** The deletion link: asked for in `who`, read from the mailbox the real SMTP server received. */
  async function askForLink(who: Browser, account: TestAccount, emailsBefore: number) {
    expectRedirect(await typeName(who, account.username), '/account/delete');
    const email = await mail.waitForMail(account.email!, emailsBefore + 1);
    expect(email.subject).toBe('Confirm the deletion of your Keyhole account');
    const link = linkPathIn(email);
    expect(link).toMatch(/^\/account\/delete\/[A-Za-z0-9_-]{43}$/);
    return link;
  }

  it('waits a day after the verified email was removed: one settings code cannot remove it and delete at once', async () => {
    await verifiedAccount({ username: 'rosa', email: 'rosa@example.com' });
    await confirmItIsMe(browser);
    expectRedirect(
      await browser.submit('/account/security', '/account/security/email/remove'),
      '/account/security',
    );
    expect((await accountNamed('rosa'))?.email).toBeNull();
    const refused = await typeName(browser, 'rosa');
    expectPage(refused, 409, /removed or changed in the last 24 hours/);
    expect(await accountNamed('rosa')).not.toBeNull();
  });

  it('with an email: the link works only in the browser that asked, after a confirm, and deletes everything', async () => {
    const account = await verifiedAccount({ username: 'rosa', email: 'rosa@example.com' });
    const other = createBrowser(site.app);
    await logIn(site, other, account);

    await confirmItIsMe(browser);
    const link = await askForLink(browser, account, 1);
    const page = await browser.get('/account/delete');
    expect(visibleText(page.text)).toContain('We sent a link to rosa@example.com');
    expect(mail.mailTo('rosa@example.com').at(-1)!.text).toContain('same browser where you asked');

    // Another browser signed in to the same account, and a stranger: refused, the link untouched.
    const stranger = createBrowser(site.app);
    for (const [elsewhere, formPage] of [
      [other, '/account'],
      [stranger, '/login'],
    ] as const) {
      expectPage(await elsewhere.get(link), 403, /Open this link in the browser where you asked/);
      expectPage(
        await elsewhere.submit(formPage, link),
        403,
        /Open this link in the browser where you asked/,
      );
    }
    expect(await accountNamed('rosa')).not.toBeNull();

    // A later step-up gives this browser a new session id: the binding carries over.
    const before = browser.cookie('mfa.sid');
    await confirmItIsMe(browser);
    expect(browser.cookie('mfa.sid')).not.toBe(before);

    // Opening the link deletes nothing by itself (a mail scanner fetches it): it asks.
    const confirmPage = await browser.get(link);
    expectPage(confirmPage, 200, /Delete my account/);
    expect(confirmPage.headers['referrer-policy']).toBe('no-referrer');
    expect(confirmPage.headers['cache-control']).toBe('no-store');
    expect(await accountNamed('rosa')).not.toBeNull();

    const id = (await accountNamed('rosa'))!.id;
    expect(await site.stores.accountSessions.listForUser(id)).toHaveLength(2);
    const deleted = await browser.submit(link, link);
    expectRedirect(deleted, '/account/deleted');
    expectPage(await browser.get('/account/deleted'), 200, /Your account has been deleted/);
    expect(await accountNamed('rosa')).toBeNull();
    // Signed out here and in the other browser: every session of the account ended for good.
    expect(await site.stores.accountSessions.listForUser(id)).toEqual([]);
    expectRedirect(await browser.get('/account'), /^\/login/);
    expectRedirect(await other.get('/account'), /^\/login/);
    expectPage(await browser.get(link), 410, /This link no longer works/);

    const events = await site.audit.recent(500);
    expect(events.filter((event) => event.username === 'rosa' || event.userId !== null)).toEqual([]);
    const [last] = events;
    expect(last).toMatchObject({ type: 'account_deleted', userId: null });
    expect(last!.username).toMatch(/^deleted:[0-9a-f]{16}$/);
    // The whole history is kept under that one pseudonym, the request and its notice included.
    const history = events.filter((event) => event.username === last!.username).map((event) => event.type);
    expect(history).toEqual(
      expect.arrayContaining([
        'account_deletion_requested',
        'notice_sent',
        'login_succeeded',
        'account_created',
      ]),
    );
  });

  it('deletes once when the confirm button is pressed several times at the same moment', async () => {
    const account = await verifiedAccount({ username: 'rosa', email: 'rosa@example.com' });
    await confirmItIsMe(browser);
    const link = await askForLink(browser, account, 1);
    const token = csrfTokenIn((await browser.get(link)).text);
    // Every press reads the session before any of them goes on (else a later one would simply
    // find the session ended): they all reach the deletion together, as a double click can.
    const presses = 3;
    const restore = holdSessionReadsUntil(site, presses);
    const answers = await Promise.all(
      Array.from({ length: presses }, () => browser.agent.post(link).type('form').send({ _csrf: token })),
    ).finally(restore);
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([303, 410, 410]);
    expect(await accountNamed('rosa')).toBeNull();
    const deletions = (await site.audit.recent(500)).filter((event) => event.type === 'account_deleted');
    expect(deletions).toHaveLength(1);
  });

  it('without a verified email: the typed name after the settings code deletes at once', async () => {
    const account = await verifiedAccount({ username: 'Rosa' });
    const other = createBrowser(site.app);
    await logIn(site, other, account);
    await confirmItIsMe(browser);
    const page = await browser.get('/account/delete');
    expect(visibleText(page.text)).toContain('it is deleted as soon as you press the button');
    // Compared as login compares names: case and width do not matter.
    expectRedirect(await typeName(browser, 'ＲＯＳＡ'), '/account/deleted');
    expect(await accountNamed('rosa')).toBeNull();
    expectRedirect(await other.get('/account'), /^\/login/);
    expect(mail.smtp.messages).toEqual([]);
  });

  it('refuses a name that is not the account’s, with the field marked', async () => {
    await verifiedAccount({ username: 'rosa' });
    await confirmItIsMe(browser);
    const page = await typeName(browser, 'rosalind');
    expectPage(page, 400, /That is not your username/);
    expect(page.text).toMatch(/<title>Error: /);
    expect(page.text).toContain('aria-invalid="true"');
    expectPage(await typeName(browser, ''), 400, /Type your username/);
    expect(await accountNamed('rosa')).not.toBeNull();
  });

  it('needs a settings code from the last 5 minutes: without one, back to the security page', async () => {
    await verifiedAccount({ username: 'rosa' });
    const page = await browser.get('/account/delete');
    expectPage(page, 200, /First, confirm it is you/);
    expect(page.text).not.toContain('name="username"');
    expectRedirect(await typeName(browser, 'rosa'), '/account/security');
    expect(await accountNamed('rosa')).not.toBeNull();

    await confirmItIsMe(browser);
    site.clock.advanceMinutes(5);
    expectRedirect(await typeName(browser, 'rosa'), '/account/security');
    expect(await accountNamed('rosa')).not.toBeNull();
    // Signed out: the login first.
    expectRedirect(await createBrowser(site.app).get('/account/delete'), /^\/login\?next=/);
  });

  it('lets a link work for 30 minutes, and not a moment longer', async () => {
    const account = await verifiedAccount({ username: 'rosa', email: 'rosa@example.com' });
    await confirmItIsMe(browser);
    const link = await askForLink(browser, account, 1);
    site.clock.advanceMinutes(29);
    expectPage(await browser.get(link), 200, /Delete my account/);
    const token = csrfTokenIn((await browser.get(link)).text);
    site.clock.advanceMinutes(1);
    const late = await browser.agent.post(link).type('form').send({ _csrf: token });
    expectPage(late, 410, /This link no longer works/);
    expect(await accountNamed('rosa')).not.toBeNull();
  });

  it('voids the earlier link when a new one is asked for', async () => {
    const account = await verifiedAccount({ username: 'rosa', email: 'rosa@example.com' });
    await confirmItIsMe(browser);
    const first = await askForLink(browser, account, 1);
    const second = await askForLink(browser, account, 2);
    expect(second).not.toBe(first);
    expectPage(await browser.get(first), 410, /This link no longer works/);
    expectPage(await browser.submit(second, first), 410);
    expect(await accountNamed('rosa')).not.toBeNull();
    expectRedirect(await browser.submit(second, second), '/account/deleted');
  });

  it('never deletes the only admin, so the secure area always has someone', async () => {
    const account = await verifiedAccount({ username: 'rosa' });
    await site.grantAdmin('rosa');
    await confirmItIsMe(browser);
    expectPage(await typeName(browser, 'rosa'), 409, /You are the only admin of this site/);
    expect(await accountNamed('rosa')).not.toBeNull();

    // With a second admin, it may go.
    await register(createBrowser(site.app), { username: 'sam' });
    await site.grantAdmin('sam');
    expectRedirect(await typeName(browser, account.username), '/account/deleted');
    expect(await accountNamed('rosa')).toBeNull();
  });

  it('really deletes: after a restart the name is free and nothing personal is left in any table', async () => {
    // A failed login typed before the account existed: the name, another way, with no account id.
    const typo = createBrowser(site.app);
    const typed = {
      username: 'QUILLFEATHER',
      password: 'not the password',
      phone: '',
      channel: 'sms' as const,
    };
    expectPage(await submitPassword(typo, typed), 401);
    const account = await verifiedAccount({
      username: 'Quillfeather',
      email: 'quill@example.org',
      phone: '+12025550142',
    });
    expectPage(await submitPassword(typo, { ...account, password: 'not the password' }), 401);
    await confirmItIsMe(browser);
    const link = await askForLink(browser, account, 1);
    const oldId = (await accountNamed('quillfeather'))!.id;
    expectRedirect(await browser.submit(link, link), '/account/deleted');
    await mail.close();

    const restarted = await createTestApp({ databasePath: join(folder, 'app.db'), clock: site.clock });
    try {
      const { db } = restarted.database;
      const tables = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.execute(
        db,
      );
      expect(tables.rows.length).toBeGreaterThan(10);
      const personal = [/quillfeather/i, /\+?12025550142/, /quill@example\.org/i];
      for (const { name } of tables.rows) {
        const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(name)}`.execute(db);
        for (const row of rows.rows) {
          for (const pattern of personal)
            expect(JSON.stringify(row), `${name}: ${pattern}`).not.toMatch(pattern);
        }
      }
      const remembered = await restarted.audit.recent(500);
      expect(remembered.filter((event) => event.type === 'login_password_failed')).toHaveLength(2);
      // Not even the masked number (the sign-up's "phone proven" detail showed it).
      expect(remembered.filter((event) => event.detail?.includes('0142'))).toEqual([]);
      expect(new Set(remembered.map((event) => event.username))).toEqual(
        new Set([expect.stringMatching(/^deleted:[0-9a-f]{16}$/)]),
      );

      // The name is free again; the new account is numbered above the old one and sees none of
      // its history in its own security log.
      const again = createBrowser(restarted.app);
      await register(again, { username: 'quillfeather' });
      const fresh = (await restarted.users.findByUsername('quillfeather'))!;
      expect(fresh.id).toBeGreaterThan(oldId);
      const own = await restarted.audit.forUser(fresh.id, new Date(0));
      expect(own.map((event) => event.type)).not.toContain('account_deletion_requested');
      expect(own.every((event) => event.username === 'quillfeather')).toBe(true);
    } finally {
      await restarted.close();
    }
    // afterEach closes `mail` again: harmless.
    mail = { ...mail, close: async () => undefined };
  });
});

/**
 * Holds each session read until `count` of them wait, then lets them all go on: concurrent requests
 * of one browser that all see its session as it was. Returns what puts the store back.
 */
function holdSessionReadsUntil(site: TestApp, count: number): () => void {
  const store = site.stores.sessions as unknown as {
    get(sid: string, callback: (...args: unknown[]) => void): void;
  };
  const original = store.get;
  const waiting: Array<() => void> = [];
  store.get = function (sid, callback) {
    waiting.push(() => original.call(store, sid, callback));
    if (waiting.length >= count) waiting.splice(0).forEach((go) => go());
  };
  return () => {
    store.get = original;
  };
}
