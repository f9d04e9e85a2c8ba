import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENERIC_LABEL, describeEvent } from '../../src/account/security-log.js';
import type { AuditEvent } from '../../src/audit/log.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestClock } from '../helpers/clock.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { logIn, register, submitPassword, type TestAccount } from '../helpers/flows.js';
import { securityPageText } from '../helpers/security.js';

/**
 * "Your security log" and the default channel on /account/security (issue 11). Threats: a person
 * who cannot see what happened on their account (a login they did not make, a changed setting);
 * one account reading another's events; an admin's address or reason shown to the account.
 */
describe('the security log and the default channel', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    // Early enough that a month later is still in the past: a session cookie's expiry is set by
    // the real clock, and the store compares it with this one.
    site = await createTestApp({ clock: createTestClock(new Date('2026-09-01T10:00:00Z')) });
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'rosa' });
    await logIn(site, browser, account);
  });
  afterEach(() => site.close());

  /** The log's rows, as text, newest first. */
  async function logRows(target = browser): Promise<string[]> {
    const html = (await target.get('/account/security')).text;
    const log = html.slice(html.indexOf('id="log-title"'));
    const body = log.slice(log.indexOf('<tbody>'), log.indexOf('</tbody>'));
    return [...body.matchAll(/<tr role="row">([\s\S]*?)<\/tr>/g)].map((row) =>
      row[1]!
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    );
  }

  it('shows the account’s own events of the last 30 days, newest first, in words, with a masked address', async () => {
    expect(
      await submitPassword(createBrowser(site.app), { ...account, password: 'not the password' }),
    ).toMatchObject({
      status: 401,
    });
    const rows = await logRows();
    expect(rows[0]).toMatch(/^\d+ \w+ 2026, 10:00 UTC Wrong password at login 127\.0\.x\.x$/);
    expect(rows).toEqual(
      expect.arrayContaining([
        // Which factor let the person in is the person's own to see (issue 12).
        expect.stringMatching(/Logged in \(by text message\) 127\.0\.x\.x$/),
        expect.stringMatching(/Code sent 127\.0\.x\.x$/),
        expect.stringMatching(/Phone number confirmed \(•••• \d{4}\) 127\.0\.x\.x$/),
        expect.stringMatching(/Account created 127\.0\.x\.x$/),
      ]),
    );
    expect(rows.at(-1)).toMatch(/Account created/);
    expect(rows.join('\n')).not.toContain('127.0.0.1');

    // 31 days on, the sign-up is out of the log; a new login is in.
    site.clock.advanceMinutes(31 * 24 * 60);
    await logIn(site, browser, account);
    const later = await logRows();
    expect(later[0]).toMatch(/Logged in/);
    expect(later.join('\n')).not.toContain('Account created');
    expect(later.join('\n')).not.toContain('Wrong password at login');
  });

  it('never shows another account’s events', async () => {
    const sami = await register(createBrowser(site.app), { username: 'sami' });
    await submitPassword(createBrowser(site.app), { ...sami, password: 'not the password' });
    const samisBrowser = createBrowser(site.app);
    await logIn(site, samisBrowser, sami);
    expectRedirect(
      await samisBrowser.submit('/account/security', '/account/security/channel', { channel: 'voice' }),
      '/account/security',
    );
    expect((await logRows(samisBrowser)).join('\n')).toContain('Wrong password at login');
    const rosas = (await logRows()).join('\n');
    expect(rosas).not.toContain('Wrong password at login');
    expect(rosas).not.toContain('Default way to get codes changed');
    const samisCount = (await logRows(samisBrowser)).length;
    const rosasEvents = await site.audit.forUser((await site.users.findByUsername('rosa'))!.id, new Date(0));
    expect(await logRows()).toHaveLength(rosasEvents.length);
    expect(samisCount).toBeGreaterThan(0);
  });

  it('changes the default channel without a code, and logs it', async () => {
    const res = await browser.submit('/account/security', '/account/security/channel', { channel: 'voice' });
    expectRedirect(res, '/account/security');
    const text = await securityPageText(browser);
    expect(text).toContain('Your codes are now sent by voice call');
    expect(text).toContain('Codes sent by voice call');
    expect((await site.users.findByUsername('rosa'))!.preferredChannel).toBe('voice');
    expect((await logRows())[0]).toMatch(
      /Default way to get codes changed \(text message to voice call\) 127\.0\.x\.x$/,
    );
    // The next settings code goes by voice.
    expectRedirect(await browser.submit('/account/security', '/account/security/confirm'), '/verify');
    expect(site.printed.at(-1)).toMatch(/^Voice call to /);
  });

  it('refuses a channel that is not one, with a 400 on the page; a visitor gets the login', async () => {
    expectPage(
      await browser.submit('/account/security', '/account/security/channel', { channel: 'pigeon' }),
      400,
      /Choose text message or voice call/,
    );
    expectPage(await browser.submit('/account/security', '/account/security/channel', {}), 400);
    expect((await site.users.findByUsername('rosa'))!.preferredChannel).toBe('sms');
    expectRedirect(
      await createBrowser(site.app).submit('/login', '/account/security/channel', { channel: 'voice' }),
      '/login?next=%2Faccount%2Fsecurity%2Fchannel',
    );
  });
});

describe('describeEvent', () => {
  const event = (overrides: Partial<AuditEvent>): AuditEvent => ({
    id: 1,
    at: new Date('2026-01-01T10:00:00Z'),
    type: 'login_succeeded',
    userId: 7,
    username: 'rosa',
    ip: '203.0.113.7',
    detail: null,
    ...overrides,
  });

  it('gives a type it does not know a generic label, never the raw type', () => {
    const entry = describeEvent(event({ type: 'something_new' as AuditEvent['type'], detail: 'secret' }));
    expect(entry).toEqual({ at: event({}).at, label: GENERIC_LABEL, address: '203.0.x.x', detail: null });
  });

  it('hides an admin’s address and reason on the events an admin did to the account', () => {
    expect(
      describeEvent(event({ type: 'account_disabled', ip: '198.51.100.9', detail: 'by admin ana: abuse' })),
    ).toMatchObject({ label: 'Disabled by an admin', address: '—', detail: null });
  });

  it('shows an admin the API keys they made and revoked, by name and hint (issue 13)', () => {
    expect(
      describeEvent(event({ type: 'api_key_created', detail: '“Shop” (kh_live_AbCd…) for sms' })),
    ).toMatchObject({
      label: 'API key created',
      address: '203.0.x.x',
      detail: '“Shop” (kh_live_AbCd…) for sms',
    });
    expect(describeEvent(event({ type: 'api_key_revoked', detail: '“Shop” (kh_live_AbCd…)' }))).toMatchObject(
      {
        label: 'API key revoked',
        detail: '“Shop” (kh_live_AbCd…)',
      },
    );
  });

  it('names a notice by what it was about', () => {
    expect(describeEvent(event({ type: 'notice_sent', detail: 'phone_changed' }))).toMatchObject({
      label: 'Security notice emailed',
      detail: 'phone number changed',
    });
  });
});
