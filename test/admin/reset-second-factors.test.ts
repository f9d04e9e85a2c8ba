import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { lastConsoleCode } from '../helpers/create-test-app.js';
import { eventually } from '../helpers/eventually.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { openNewestLink } from '../helpers/security.js';

/**
 * An admin's reset of an account's second factors (issue 12), for a person who lost the app, the
 * passkeys and the recovery codes. Threats: a stranger who took the phone asks an admin to remove
 * the other factors (the page asks the admin to confirm they checked with the owner, and the owner
 * hears of it by email); a secure area left open used to do it; a reset nobody can account for.
 */
describe('resetting an account’s second factors from the secure area', () => {
  let mail: MailTestApp;
  let admin: Browser;
  let ann: TestAccount;
  let annId: number;

  const resetPage = () => `/admin/accounts/${annId}/reset-factors`;
  const reset = (fields: Record<string, string>, browser = admin) =>
    browser.submit(resetPage(), resetPage(), fields);
  const auditOf = async (type: string) =>
    (await mail.site.audit.recent(200)).filter((event) => event.type === type);
  const countOf = async (table: 'factors' | 'recovery_codes' | 'remembered_browsers') =>
    (await mail.site.database.db.selectFrom(table).select('user_id').where('user_id', '=', annId).execute())
      .length;

  beforeEach(async () => {
    mail = await createMailTestApp();
    const { site } = mail;
    admin = createBrowser(site.app);
    const root = await register(admin, { username: 'root' });
    ann = await register(createBrowser(site.app), { username: 'ann', email: 'ann@example.com' });
    await openNewestLink(mail, createBrowser(site.app), 'ann@example.com');
    annId = (await site.users.findByUsername('ann'))!.id;
    // What a person who set everything up has: an app, a passkey, recovery codes, a remembered browser.
    await site.stores.factors.add(
      { kind: 'totp', userId: annId, label: 'Phone app', sealedSecret: 'sealed', lastStep: null },
      { maxPerKind: 5 },
    );
    await site.stores.factors.add(
      {
        kind: 'passkey',
        userId: annId,
        label: 'Laptop',
        credentialId: 'credential-1',
        publicKey: 'key',
        signCount: 0,
        transports: ['internal'],
        userVerified: true,
      },
      { maxPerKind: 5 },
    );
    await site.database.db
      .insertInto('recovery_codes')
      .values(
        ['a', 'b', 'c'].map((code) => ({ user_id: annId, code_hmac: code, created_at: 0, used_at: null })),
      )
      .execute();
    await site.stores.rememberedBrowsers.add(
      {
        userId: annId,
        tokenHash: 'a'.repeat(64),
        label: 'Firefox on Windows',
        expiresAt: new Date(site.clock.now().getTime() + 60_000),
      },
      { maxPerAccount: 10 },
    );
    await site.users.setDefaultFactor(annId, 'passkey');
    await site.grantAdmin('root');
    await logIn(site, admin, root);
    expectRedirect(await admin.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(admin, lastConsoleCode(site.printed, 'admin')), '/admin');
  });
  afterEach(() => mail.close());

  it('is offered on the account’s page, and its own page says what goes and what stays', async () => {
    const account = await admin.get(`/admin/accounts/${annId}`);
    expect(account.text).toContain(`href="${resetPage()}"`);
    const page = await admin.get(resetPage());
    expectPage(page, 200);
    const text = visibleText(page.text);
    expect(text).toContain('1 authenticator app and 1 passkey');
    expect(text).toContain('1 remembered browser');
    expect(text).toMatch(new RegExp(`Its phone, \\S+ ${ann.phone.slice(-4)} ?, stays`));
    expect(page.headers['cache-control']).toBe('no-store');
  });

  it('removes them with a reason and a confirmation; audits who, whom and why; tells the person by email', async () => {
    const res = await reset({ reason: '  lost phone app   and laptop ', confirm: 'yes' });
    expectRedirect(res, `/admin/accounts/${annId}`);
    const page = visibleText((await admin.get(`/admin/accounts/${annId}`)).text);
    expect(page).toContain(
      'ann’s second factors are reset (2 apps and passkeys, 3 recovery codes, 1 remembered browser removed): its phone is its only second factor now.',
    );
    expect(await countOf('factors')).toBe(0);
    expect(await countOf('recovery_codes')).toBe(0);
    expect(await countOf('remembered_browsers')).toBe(0);
    expect((await mail.site.users.findById(annId))!.defaultFactor).toBeNull();
    expect(await auditOf('account_factors_reset')).toMatchObject([
      {
        userId: annId,
        username: 'ann',
        detail:
          'by root (2 apps and passkeys, 3 recovery codes, 1 remembered browser removed): lost phone app and laptop',
      },
    ]);
    const notice = await mail.waitForMail('ann@example.com', 2);
    expect(notice.subject).toBe('Your second factors were reset');
    expect(notice.text).toContain('Your phone still receives your codes');
    // The person's own security log says it, without the admin's name or address.
    const log = await eventually(async () => {
      const events = await mail.site.audit.forUser(annId, new Date(0));
      expect(events.map((event) => event.type)).toContain('notice_sent');
      return events;
    });
    expect(log.map((event) => event.type)).toContain('account_factors_reset');
  });

  it('does nothing without the confirmation or a reason: a 400 on its page', async () => {
    const unconfirmed = await reset({ reason: 'lost everything' });
    expectPage(unconfirmed, 400, /Confirm that you checked the request with the account’s owner/);
    expect(unconfirmed.text).toContain('lost everything');
    expectPage(await reset({ reason: ' ', confirm: 'yes' }), 400, /Say why you are doing this/);
    expectPage(await reset({ reason: 'lost everything', confirm: 'on' }), 400, /Confirm that you checked/);
    expect(await countOf('factors')).toBe(2);
    expect(await countOf('remembered_browsers')).toBe(1);
    expect(await auditOf('account_factors_reset')).toEqual([]);
  });

  it('needs an admin code from the last 5 minutes, then comes back to its page', async () => {
    // Threat: a secure area left open at a desk used to strip someone's factors.
    mail.site.clock.advanceMinutes(6);
    expectRedirect(await reset({ reason: 'left open', confirm: 'yes' }), '/admin/confirm');
    expect(await countOf('factors')).toBe(2);
    expectRedirect(await admin.submit('/admin/confirm', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(admin, lastConsoleCode(mail.site.printed, 'admin')), resetPage());
    expectRedirect(await reset({ reason: 'asked in person', confirm: 'yes' }), `/admin/accounts/${annId}`);
    expect(await countOf('factors')).toBe(0);
  });

  it('is refused for the admin’s own account: another admin must do it', async () => {
    // Threat: whoever holds an admin's session (and phone) strips the passkeys and apps the
    // secure area would ask them for.
    const rootId = (await mail.site.users.findByUsername('root'))!.id;
    await mail.site.stores.factors.add(
      { kind: 'totp', userId: rootId, label: 'Root app', sealedSecret: 'sealed', lastStep: null },
      { maxPerKind: 5 },
    );
    const ownPage = `/admin/accounts/${rootId}/reset-factors`;
    expect((await admin.get(`/admin/accounts/${rootId}`)).text).not.toContain(`href="${ownPage}"`);
    const page = await admin.get(ownPage);
    expectPage(page, 200, /You cannot reset your own second factors. Ask another admin to do it/);
    expect(page.text).not.toContain(`action="${ownPage}"`);
    const refused = await admin.submit(resetPage(), ownPage, { reason: 'my own', confirm: 'yes' });
    expectPage(refused, 403, /You cannot reset your own second factors/);
    expect(await mail.site.stores.factors.listForUser(rootId)).toHaveLength(1);
    expect(await auditOf('account_factors_reset')).toEqual([]);
  });

  it('is refused to a signed-in person who is not an admin', async () => {
    const annBrowser = createBrowser(mail.site.app);
    // Her default is the passkey; she logs in by text message through "Try another way".
    expectRedirect(await submitPassword(annBrowser, ann), '/verify');
    expectRedirect(await annBrowser.submit('/verify', '/verify/resend', { channel: 'sms' }), '/verify');
    expectRedirect(await submitCode(annBrowser, lastConsoleCode(mail.site.printed, 'login')), /^\/account/);
    expectPage(await annBrowser.get(resetPage()), 403, /for administrators only/);
    expectPage(await reset({ reason: 'mine', confirm: 'yes' }, annBrowser), 403, /for administrators only/);
    expect(await countOf('factors')).toBe(2);
  });
});
