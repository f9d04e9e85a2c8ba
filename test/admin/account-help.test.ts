import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECOVERY_FAILURES_PER_HOUR } from '../../src/factors/recovery-codes.js';
import { recoveryFailuresKey, resetAppFailuresKey } from '../../src/mfa/service.js';
import type { PasswordHasher } from '../../src/users/passwords.js';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';

/**
 * An admin helping an account from the secure area (issue 11): unlock, end all sessions, disable
 * and enable. Threats: a non-admin (or an admin session left open at a desk) acting on accounts;
 * an action nobody can account for; a disabled account still usable, or told apart from a wrong
 * password on the login form; an admin locking the admins out.
 */

/** Password and code in this browser: signed in. */
async function logIn(site: TestApp, browser: Browser, account: TestAccount) {
  expectRedirect(await submitPassword(browser, account), '/verify');
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
}

/** The secure area's own code, entered now. */
async function enterSecureArea(site: TestApp, browser: Browser) {
  expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'admin')), '/admin');
}

const SIGNED_OUT = '/login?next=%2Faccount';

describe('admin actions on an account', () => {
  let site: TestApp;
  let admin: Browser;
  let root: TestAccount;
  let ann: TestAccount;
  let annId: number;
  /** Every password check the login form made: argon2's stand-in, which counts. */
  let hashChecks: Array<string | null>;

  const accountPage = (id = annId) => `/admin/accounts/${id}`;
  const act = (action: string, reason: string, id = annId, browser = admin) =>
    browser.submit(accountPage(id), accountPage(id), { action, reason });
  const auditOf = async (type: string) =>
    (await site.audit.recent(200)).filter((event) => event.type === type);

  beforeEach(async () => {
    hashChecks = [];
    const countingHasher: PasswordHasher = {
      hash: async (password) => `hash:${password}`,
      verify: async (hash, password) => {
        hashChecks.push(hash);
        return hash === `hash:${password}`;
      },
    };
    site = await createTestApp({ hasher: countingHasher });
    admin = createBrowser(site.app);
    root = await register(admin, { username: 'root' });
    ann = await register(createBrowser(site.app), { username: 'ann' });
    annId = (await site.users.findByUsername('ann'))!.id;
    await site.grantAdmin('root');
    await logIn(site, admin, root);
    await enterSecureArea(site, admin);
  });
  afterEach(() => site.close());

  describe('who may act', () => {
    it('refuses a signed-in person who is not an admin, and a visitor, without changing anything', async () => {
      const annBrowser = createBrowser(site.app);
      await logIn(site, annBrowser, ann);
      const rootId = (await site.users.findByUsername('root'))!.id;
      expectPage(await annBrowser.get(accountPage(rootId)), 403, /for administrators only/);
      // A form of her own making, with her own valid CSRF token.
      expectPage(await act('end_sessions', 'testing', rootId, annBrowser), 403, /for administrators only/);
      expectRedirect(await createBrowser(site.app).get(accountPage()), /^\/login\?next=/);
      expect(await auditOf('account_sessions_ended')).toEqual([]);
      expect(await site.stores.accountSessions.listForUser(rootId)).toHaveLength(1);
    });

    it('lists each account on the secure area page with a link to its own page', async () => {
      const secureArea = await admin.get('/admin');
      expect(secureArea.text).toContain(`href="${accountPage()}"`);
      const page = await admin.get(accountPage());
      expectPage(page, 200, /Account ann/);
      expect(visibleText(page.text)).toMatch(/Status Enabled/);
    });

    it('answers 404 for an account that does not exist, or an id that is not one', async () => {
      expectPage(await admin.get('/admin/accounts/999999'), 404, /no such account/);
      expectPage(await admin.get('/admin/accounts/1e3'), 404);
      expectPage(await act('unlock', 'testing', 999_999), 404);
    });

    it('sends an admin whose code is older than 5 minutes for a fresh one first, then back to the account', async () => {
      // Threat: a secure area left open at a desk (it lasts 15 minutes) used to disable someone.
      site.clock.advanceMinutes(6);
      expectPage(await admin.get(accountPage()), 200, /admin code from the last 5 minutes/);
      expectRedirect(await act('disable', 'left open'), '/admin/confirm');
      expect((await site.users.findById(annId))?.disabledAt).toBeNull();
      expect(await auditOf('account_disabled')).toEqual([]);

      expectPage(await admin.get('/admin/confirm'), 200, /needs an admin code from the last 5 minutes/);
      expectRedirect(await admin.submit('/admin/confirm', '/admin/step-up'), '/verify');
      expectRedirect(await submitCode(admin, lastConsoleCode(site.printed, 'admin')), accountPage());
      expectRedirect(await act('disable', 'asked by the owner'), accountPage());
      expect((await site.users.findById(annId))?.disabledAt).not.toBeNull();
    });

    it('asks for a reason: none, only spaces, or too long is a 400 on the page, and nothing is done', async () => {
      for (const reason of ['', '   \n ', 'x'.repeat(201)]) {
        const page = await act('end_sessions', reason);
        expectPage(page, 400, /Error: /);
        expect(visibleText(page.text)).toMatch(/Say why/);
      }
      const missing = await admin.submit(accountPage(), accountPage(), { action: 'disable' });
      expectPage(missing, 400, /Say why you are doing this/);
      expectPage(await act('promote', 'because'), 400, /Choose what to do/);
      expect((await site.users.findById(annId))?.disabledAt).toBeNull();
      for (const type of ['account_sessions_ended', 'account_disabled', 'account_unlocked']) {
        expect(await auditOf(type)).toEqual([]);
      }
    });
  });

  describe('disable and enable', () => {
    it('disables an account: its open session stops at once, and the audit log says who, whom and why', async () => {
      const annBrowser = createBrowser(site.app);
      await logIn(site, annBrowser, ann);
      expectPage(await annBrowser.get('/account'), 200);

      expectRedirect(await act('disable', '  reported   stolen phone  '), accountPage());
      const page = visibleText((await admin.get(accountPage())).text);
      expect(page).toContain('ann is disabled: it cannot log in, and its sessions have ended (1 session).');
      expect(page).toMatch(/Status Disabled since/);

      expectRedirect(await annBrowser.get('/account'), SIGNED_OUT);
      expect(await auditOf('account_disabled')).toMatchObject([
        { userId: annId, username: 'ann', detail: 'by root (1 session ended): reported stolen phone' },
      ]);
      expect(visibleText((await admin.get('/admin')).text)).toMatch(/ann disabled/);
    });

    it('stops a disabled account’s open session even when the store missed it (another instance, a save in flight)', async () => {
      const annBrowser = createBrowser(site.app);
      await logIn(site, annBrowser, ann);
      // The flag alone, as if ending the sessions had not reached this one.
      expect(await site.users.disable(annId)).toBe('disabled');
      expectRedirect(await annBrowser.get('/account'), SIGNED_OUT);
    });

    it('answers a disabled account’s login exactly as a wrong password: same status, same page, the hash still checked', async () => {
      // Threat: the login form telling a stranger which accounts exist, or were disabled.
      expectRedirect(await act('disable', 'fraud review'), accountPage());
      const normalise = (html: string) => visibleText(html.replace(/value="[^"]*"/g, ''));

      hashChecks.length = 0;
      const wrong = await submitPassword(createBrowser(site.app), { ...ann, password: 'not the password' });
      const disabled = await submitPassword(createBrowser(site.app), ann);
      expect(disabled.status).toBe(401);
      expect(wrong.status).toBe(401);
      expect(normalise(disabled.text)).toBe(normalise(wrong.text));
      expect(disabled.text).toContain('Invalid username or password.');
      expect(hashChecks).toEqual([`hash:${ann.password}`, `hash:${ann.password}`]);
      expect(site.printed.some((line) => line.includes('Keyhole code') && line.endsWith(ann.phone))).toBe(
        false,
      );
      expect(await auditOf('login_refused_disabled')).toMatchObject([{ username: 'ann' }]);
    });

    it('does not sign in a login whose password was given before the disable', async () => {
      const annBrowser = createBrowser(site.app);
      expectRedirect(await submitPassword(annBrowser, ann), '/verify');
      const codePage = await annBrowser.get('/verify');
      expectRedirect(await act('disable', 'fraud review'), accountPage());
      // The code page was open before the disable; its form is sent after.
      const sent = await annBrowser.agent
        .post('/verify')
        .type('form')
        .send({ code: lastConsoleCode(site.printed), _csrf: csrfTokenIn(codePage.text) });
      expectRedirect(sent, '/login');
      expectRedirect(await annBrowser.get('/account'), SIGNED_OUT);
    });

    it('enables it again: the account logs in as before, and that is audited too', async () => {
      expectRedirect(await act('disable', 'fraud review'), accountPage());
      expectRedirect(await act('enable', 'review done'), accountPage());
      expect(visibleText((await admin.get(accountPage())).text)).toContain(
        'ann is enabled: it can log in again.',
      );
      await logIn(site, createBrowser(site.app), ann);
      expect(await auditOf('account_enabled')).toMatchObject([
        { username: 'ann', detail: 'by root: review done' },
      ]);
      expectPage(await act('enable', 'again'), 409, /ann is not disabled/);
    });

    it('refuses to disable the admin’s own account', async () => {
      const rootId = (await site.users.findByUsername('root'))!.id;
      const page = await act('disable', 'oops', rootId);
      expectPage(page, 403, /You cannot disable your own account/);
      expect((await site.users.findById(rootId))?.disabledAt).toBeNull();
      expectPage(await admin.get('/admin'), 200, /Secure area/);
      expect(await auditOf('account_disabled')).toEqual([]);
    });

    it('refuses to disable another admin: the operator takes the role away first', async () => {
      // Threat: one admin (or a stolen admin session) locks the owner and every other admin out.
      await site.grantAdmin('ann');
      const page = await act('disable', 'takeover');
      expectPage(page, 403, /ann is an admin/);
      expect(page.text).toContain('npm run admin -- revoke ann');
      expect((await site.users.findById(annId))?.disabledAt).toBeNull();
    });
  });

  describe('end all sessions', () => {
    it('ends the account’s sessions in every browser', async () => {
      const laptop = createBrowser(site.app);
      const phone = createBrowser(site.app);
      await logIn(site, laptop, ann);
      await logIn(site, phone, ann);

      expectRedirect(await act('end_sessions', 'lost laptop'), accountPage());
      expect(visibleText((await admin.get(accountPage())).text)).toContain(
        'ann’s sessions have ended (2 sessions).',
      );
      expectRedirect(await laptop.get('/account'), SIGNED_OUT);
      expectRedirect(await phone.get('/account'), SIGNED_OUT);
      expect(await auditOf('account_sessions_ended')).toMatchObject([
        { username: 'ann', detail: 'by root (2 sessions ended): lost laptop' },
      ]);
      // The account itself is untouched: it logs in again.
      await logIn(site, laptop, ann);
    });

    it('shows the account’s sessions, by browser and masked address, never by id', async () => {
      const firefox = createBrowser(site.app);
      firefox.agent.set(
        'User-Agent',
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0',
      );
      await logIn(site, firefox, ann);
      const page = await admin.get(accountPage());
      const text = visibleText(page.text);
      expect(text).toContain('Firefox on Windows');
      expect(text).toMatch(/127\.0\.x\.x|0:0:x:x:x:x:x:x|Unknown address/);
      const sid = decodeURIComponent(firefox.cookie('mfa.sid')!.split('=')[1]!).slice(2).split('.')[0]!;
      expect(page.text).not.toContain(sid);
    });

    it('on the admin’s own account, keeps the session the admin is using', async () => {
      const otherBrowser = createBrowser(site.app);
      await logIn(site, otherBrowser, root);
      const rootId = (await site.users.findByUsername('root'))!.id;
      expectRedirect(await act('end_sessions', 'tidy up', rootId), accountPage(rootId));
      expectRedirect(await otherBrowser.get('/account'), SIGNED_OUT);
      expectPage(await admin.get(accountPage(rootId)), 200, /Your other sessions have ended \(1 session\)/);
    });
  });

  describe('unlock', () => {
    it('lets an account whose code entry was suspended enter codes again', async () => {
      for (let i = 0; i < site.ceiling.maxConsecutiveFailures; i += 1)
        await site.ceiling.recordFailure(annId);
      const annBrowser = createBrowser(site.app);
      expectRedirect(await submitPassword(annBrowser, ann), '/verify');
      expectPage(await annBrowser.get('/verify'), 200, /suspended/);

      expectRedirect(await act('unlock', 'owner called, identity checked'), accountPage());
      expect(visibleText((await admin.get(accountPage())).text)).toMatch(/Code entry Normal/);
      expectRedirect(await annBrowser.submit('/verify', '/verify/resend', {}), '/verify');
      expectRedirect(await submitCode(annBrowser, lastConsoleCode(site.printed)), '/account');
      expect(await auditOf('account_unlocked')).toMatchObject([
        {
          username: 'ann',
          detail: 'by root (code entry suspension lifted): owner called, identity checked',
        },
      ]);
    });

    it('ends the pause after too many wrong codes', async () => {
      const annBrowser = createBrowser(site.app);
      expectRedirect(await submitPassword(annBrowser, ann), '/verify');
      for (let i = 0; i < 10; i += 1) {
        if (i > 0 && i % 5 === 0) {
          site.clock.advance(31_000);
          await annBrowser.submit('/verify', '/verify/resend', {});
        }
        await submitCode(annBrowser, wrongFor(lastConsoleCode(site.printed)));
      }
      const paused = await submitCode(annBrowser, lastConsoleCode(site.printed));
      expectPage(paused, 429, /Too many wrong codes/);

      expectRedirect(await act('unlock', 'owner mistyped'), accountPage());
      site.clock.advance(31_000);
      expectRedirect(await annBrowser.submit('/verify', '/verify/resend', {}), '/verify');
      expectRedirect(await submitCode(annBrowser, lastConsoleCode(site.printed)), '/account');
    });

    it('ends the pauses of wrong recovery codes and of wrong app codes at resets too', async () => {
      // Threat: a stranger with the password spends the hour's recovery-code guesses, and the
      // owner who lost her phone, the person an admin unlocks for, stays refused her way in.
      const { limits } = site.stores;
      for (let i = 0; i < RECOVERY_FAILURES_PER_HOUR; i += 1) {
        await limits.increment(recoveryFailuresKey(annId), 3_600_000);
        await limits.increment(resetAppFailuresKey(annId), 24 * 3_600_000);
      }
      expectRedirect(await act('unlock', 'lost her phone, identity checked'), accountPage());
      expect(await limits.get(recoveryFailuresKey(annId))).toBeNull();
      expect(await limits.get(resetAppFailuresKey(annId))).toBeNull();
    });

    it('forgives the failed passwords of a browser that had logged in before', async () => {
      const annBrowser = createBrowser(site.app);
      await logIn(site, annBrowser, ann);
      expectRedirect(await annBrowser.submit('/account', '/logout'), '/login?signedOut');
      for (let i = 0; i < 10; i += 1) {
        expectPage(await submitPassword(annBrowser, { ...ann, password: `wrong ${i}` }), 401);
      }
      expectPage(await submitPassword(annBrowser, ann), 429, /Too many failed attempts/);

      expectRedirect(await act('unlock', 'owner forgot, then remembered'), accountPage());
      expectRedirect(await submitPassword(annBrowser, ann), '/verify');
    });
  });
});
