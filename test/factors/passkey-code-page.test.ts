import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { createBrowser, csrfTokenIn, type Browser, type Response } from '../helpers/agent.js';
import {
  consoleCodesPrinted,
  createTestApp,
  lastConsoleCode,
  type TestApp,
} from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import {
  forgetCookies,
  logIn,
  register,
  submitPassword,
  wrongCodesByAStranger,
  type TestAccount,
} from '../helpers/flows.js';
import { answerWithPasskey, postNewPasskey } from '../helpers/passkeys.js';
import { confirmSettings, securityPageText } from '../helpers/security.js';
import {
  createSoftwareAuthenticator,
  passkeyOptionsIn,
  type SoftwareAuthenticator,
} from '../helpers/software-authenticator.js';

/**
 * Passkeys on the code page (issue 12), over HTTP with a software authenticator: the login and
 * the secure area's step-up finished by a passkey added on /account/security. Threats: a passkey
 * of another account offered after this account's password, an admin's passkey that skipped its
 * PIN, a passkey still working after its removal.
 */
describe('passkeys on the code page', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  let laptop: SoftwareAuthenticator;

  beforeEach(async () => {
    site = await createTestApp({ env: { ADMIN_USERNAMES: '' } });
    browser = createBrowser(site.app);
    laptop = createSoftwareAuthenticator({ origin: site.config.publicUrl, rpId: site.config.publicHost });
    account = await register(browser, { username: 'rosa' });
    await logIn(site, browser, account);
    await addPasskey(browser, laptop, 'Laptop');
  });
  afterEach(() => site.close());

  async function addPasskey(who: Browser, device: SoftwareAuthenticator, label: string) {
    await confirmSettings(site, who);
    expectRedirect(await postNewPasskey(who, device, label), '/account/security');
  }

  async function logOut(who: Browser) {
    expectRedirect(await who.submit('/account', '/logout'), '/login?signedOut');
    forgetCookies(who);
  }

  it('logs in with a passkey by "Try another way", and the security log names it', async () => {
    await logOut(browser);
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(await browser.submit('/verify', '/verify/method', { method: 'passkey' }), '/verify');
    expectRedirect(await answerWithPasskey(browser, laptop), '/account');
    const page = await securityPageText(browser);
    expect(page).toContain('Logged in (by passkey “Laptop”)');
    expect(page).toMatch(/Laptop \d+ \w+ \d{4}, \d\d:\d\d UTC \d+ \w+ \d{4}, \d\d:\d\d UTC/);
  });

  it('opens the login on the passkey when it is the default, and sends no code', async () => {
    expectRedirect(
      await browser.submit('/account/security', '/account/security/default-factor', { factor: 'passkey' }),
      '/account/security',
    );
    await logOut(browser);
    const codesBefore = consoleCodesPrinted(site.printed, 'login');
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(await answerWithPasskey(browser, laptop), '/account');
    expect(consoleCodesPrinted(site.printed, 'login')).toBe(codesBefore);
  });

  it('says on each settings page that "confirm it is you" asks for the passkey when it is the default, not a code', async () => {
    // The pages promised a code by phone, then asked for the passkey and sent none.
    const pages = [
      '/account/security',
      '/account/security/app',
      '/account/delete',
      '/account/recovery-codes',
    ];
    site.clock.advanceMinutes(6); // past the settings confirmation of beforeEach
    expect(await securityPageText(browser)).toContain('Send me a code');
    expectRedirect(
      await browser.submit('/account/security', '/account/security/default-factor', { factor: 'passkey' }),
      '/account/security',
    );
    for (const path of pages) {
      const text = visibleText((await browser.get(path)).text);
      expect(text, path).toContain('with your passkey');
      expect(text, path).toContain('Confirm it is you');
      expect(text, path).not.toMatch(/Send me a code|sent to your phone|We will send it/);
    }
    const codesBefore = consoleCodesPrinted(site.printed, 'settings');
    expectRedirect(await browser.submit('/account/security', '/account/security/confirm'), '/verify');
    expectRedirect(await answerWithPasskey(browser, laptop), '/account/security');
    expect(consoleCodesPrinted(site.printed, 'settings')).toBe(codesBefore);
  });

  it('refuses another account’s passkey after this account’s password', async () => {
    const other = createBrowser(site.app);
    const brunosKey = createSoftwareAuthenticator({
      origin: site.config.publicUrl,
      rpId: site.config.publicHost,
    });
    const bruno = await register(other, { username: 'bruno' });
    await logIn(site, other, bruno);
    await addPasskey(other, brunosKey, 'Bruno’s key');

    await logOut(browser);
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(await browser.submit('/verify', '/verify/method', { method: 'passkey' }), '/verify');
    const page = await browser.get('/verify');
    const options = passkeyOptionsIn<PublicKeyCredentialRequestOptionsJSON>(page.text);
    // Bruno's authenticator signs Rosa's challenge with Bruno's passkey (a discoverable-credential prompt).
    const answer = brunosKey.authenticate({ ...options, allowCredentials: [] });
    const res = await browser.agent
      .post('/verify')
      .type('form')
      .send({ _csrf: csrfTokenIn(page.text), method: 'passkey', credential: JSON.stringify(answer) });
    expectPage(res, 400, /That passkey is not one of this account’s/);
    expect((await browser.get('/account')).headers.location).toMatch(/^\/login/);
  });

  it('opens the secure area with a passkey only when it verified its user', async () => {
    await site.grantAdmin('rosa');
    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
    const page = await browser.get('/verify');
    expect(passkeyOptionsIn<PublicKeyCredentialRequestOptionsJSON>(page.text).userVerification).toBe(
      'required',
    );
    expectPage(
      await answerWithPasskey(browser, laptop, { userVerified: false }),
      400,
      /a PIN, fingerprint or face/,
    );
    expectRedirect(await answerWithPasskey(browser, laptop, { userVerified: true }), '/admin');
    expectPage(await browser.get('/admin'), 200, /Secure area/);
  });

  it('refuses an answer to a challenge older than 5 minutes, as long as WebAuthn lets the person answer', async () => {
    await logOut(browser);
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(await browser.submit('/verify', '/verify/method', { method: 'passkey' }), '/verify');
    const page = await browser.get('/verify');
    const options = passkeyOptionsIn<PublicKeyCredentialRequestOptionsJSON>(page.text);
    site.clock.advanceMinutes(6);
    const late = await browser.agent
      .post('/verify')
      .type('form')
      .send({
        _csrf: csrfTokenIn(page.text),
        method: 'passkey',
        credential: JSON.stringify(laptop.authenticate(options)),
      });
    expectPage(late, 400, /This page was open too long/);
    // A new challenge, answered at once, is fine.
    expectRedirect(await answerWithPasskey(browser, laptop), '/account');
  });

  describe('while strangers’ wrong codes pause or suspend code entry', () => {
    // Threat: whoever has only the password enters wrong codes until the account's code entry is
    // paused (10 in 15 minutes) or suspended (100 in a row), and the owner's passkey, whose answer
    // nobody can guess, was locked out with them.
    async function pausedByAStranger() {
      await logOut(browser);
      await wrongCodesByAStranger(site, account);
      const rosa = (await site.users.findByUsername('rosa'))!;
      expect(await site.audit.recent(5)).toContainEqual(expect.objectContaining({ type: 'code_lockout' }));
      return rosa;
    }

    it('lets the owner in with a passkey while paused, without lifting the pause', async () => {
      const rosa = await pausedByAStranger();
      // The login offers the passkey at once rather than a wait (no code can be sent now).
      expectRedirect(await submitPassword(browser, account), '/verify');
      const page = await browser.get('/verify');
      expect(visibleText(page.text)).toContain('code entry is paused');
      expect(visibleText(page.text)).toContain('A passkey still works.');
      expectRedirect(await answerWithPasskey(browser, laptop), '/account');
      // Code entry stays paused for whoever guesses codes: no code is sent, none is taken.
      const stranger = createBrowser(site.app);
      const codesBefore = consoleCodesPrinted(site.printed, 'login');
      expectRedirect(await submitPassword(stranger, account), '/verify');
      expect(visibleText((await stranger.get('/verify')).text)).toContain('code entry is paused');
      expect(consoleCodesPrinted(site.printed, 'login')).toBe(codesBefore);
      const events = await site.audit.forUser(rosa.id, new Date(0));
      expect(events[0]).toMatchObject({ type: 'login_succeeded', detail: 'by passkey “Laptop”' });
    });

    it('lets the owner in with a passkey while suspended', async () => {
      await logOut(browser);
      const rosa = (await site.users.findByUsername('rosa'))!;
      for (let failure = 0; failure < site.ceiling.maxConsecutiveFailures; failure += 1) {
        await site.ceiling.recordFailure(rosa.id);
      }
      expect(await site.ceiling.isSuspended(rosa.id)).toBe(true);
      expectRedirect(await submitPassword(browser, account), '/verify');
      const page = await browser.get('/verify');
      expect(visibleText(page.text)).toContain('code entry is suspended');
      expectRedirect(await answerWithPasskey(browser, laptop), '/account');
      expect(await site.ceiling.isSuspended(rosa.id)).toBe(true);
    });

    it('offers the passkey under "Try another way" on a suspended page that shows the phone', async () => {
      await logOut(browser);
      const rosa = (await site.users.findByUsername('rosa'))!;
      // A login begun before the suspension, on the phone.
      const before = createBrowser(site.app);
      expectRedirect(await submitPassword(before, account), '/verify');
      for (let failure = 0; failure < site.ceiling.maxConsecutiveFailures; failure += 1) {
        await site.ceiling.recordFailure(rosa.id);
      }
      const page = await before.get('/verify');
      expect(visibleText(page.text)).toContain('code entry is suspended');
      expect(page.text).not.toContain('Text a code to my phone');
      expect(page.text).toContain('Use a passkey');
      expectRedirect(await before.submit('/verify', '/verify/method', { method: 'passkey' }), '/verify');
      expectRedirect(await answerWithPasskey(before, laptop), '/account');
    });
  });

  it('refuses and audits a bogus passkey answer without counting it as a wrong code', async () => {
    await logOut(browser);
    const stranger = createBrowser(site.app);
    expectRedirect(await submitPassword(stranger, account), '/verify');
    expectRedirect(await stranger.submit('/verify', '/verify/method', { method: 'passkey' }), '/verify');
    // More bogus answers than the wrong codes that would pause the account.
    for (let answer = 0; answer < 12; answer += 1) {
      const refused = await stranger.submit('/verify', '/verify', {
        method: 'passkey',
        credential: JSON.stringify({ id: 'bogus', rawId: 'bogus', type: 'public-key', response: {} }),
      });
      expectPage(refused, 400, /did not send a passkey/);
    }
    const rosa = (await site.users.findByUsername('rosa'))!;
    const events = await site.audit.forUser(rosa.id, new Date(0));
    expect(events.filter((event) => event.type === 'passkey_refused')).toHaveLength(12);
    expect(events.filter((event) => event.type === 'code_lockout')).toEqual([]);
    // The owner's phone codes are not paused by them.
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(
      await browser.submit('/verify', '/verify', { code: lastConsoleCode(site.printed) }),
      '/account',
    );
  });

  it('still ends a step-up session after 10 refused passkey answers', async () => {
    // A stolen session answering the settings step-up again and again ends itself, as with codes.
    site.clock.advanceMinutes(6);
    expectRedirect(
      await browser.submit('/account/security', '/account/security/default-factor', { factor: 'passkey' }),
      '/account/security',
    );
    expectRedirect(await browser.submit('/account/security', '/account/security/confirm'), '/verify');
    let last: Response | undefined;
    for (let answer = 0; answer < 10; answer += 1) {
      last = await browser.submit('/verify', '/verify', { method: 'passkey', credential: '{}' });
    }
    expectRedirect(last!, '/login?stepUpFailed');
    expectRedirect(await browser.get('/account'), /^\/login/);
  });

  it('no longer offers or accepts a passkey once it is removed from the factor list', async () => {
    const [passkey] = await site.stores.factors.listForUser((await site.users.findByUsername('rosa'))!.id);
    await confirmSettings(site, browser);
    expectRedirect(
      await browser.submit('/account/security', `/account/security/factors/${passkey!.id}/remove`),
      '/account/security',
    );
    expect(await securityPageText(browser)).toContain('You have no passkeys yet.');
    await logOut(browser);
    expectRedirect(await submitPassword(browser, account), '/verify');
    expect((await browser.get('/verify')).text).not.toContain('Use a passkey');
    const refused = await browser.submit('/verify', '/verify/method', { method: 'passkey' });
    expectPage(refused, 400, /cannot be used here/);
  });
});
