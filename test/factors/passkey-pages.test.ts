import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import { MAX_PASSKEYS_PER_ACCOUNT } from '../../src/factors/passkeys.js';
import { jsonForScriptElement } from '../../src/http/script-json.js';
import { createBrowser, csrfTokenIn, type Browser, type Response } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, PRODUCTION_ENV, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, type TestAccount } from '../helpers/flows.js';
import { createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, openNewestLink, securityPageText } from '../helpers/security.js';
import {
  createSoftwareAuthenticator,
  passkeyOptionsIn,
  type SoftwareAuthenticator,
} from '../helpers/software-authenticator.js';

const NEW_PAGE = '/account/security/passkeys/new';

/** The options the "add a passkey" page hands to the browser. */
const optionsOnPage = (html: string) => passkeyOptionsIn<PublicKeyCredentialCreationOptionsJSON>(html);

/**
 * Adding a passkey on /account/security (issue 12), over HTTP with a software authenticator.
 * Threats: a stolen session adding its own passkey (a fresh settings code is needed), an answer
 * replayed or made elsewhere, junk in the form field (a clear 400, never a 500).
 */
describe('adding a passkey on /account/security', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  let authenticator: SoftwareAuthenticator;

  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'rosa' });
    await logIn(site, browser, account);
    authenticator = createSoftwareAuthenticator({
      origin: site.config.publicUrl,
      rpId: site.config.publicHost,
    });
  });
  afterEach(() => site.close());

  const rosa = async () => (await site.users.findByUsername('rosa'))!;
  const passkeysOfRosa = async () => site.stores.factors.listForUser((await rosa()).id);

  /** Opens the page, lets the authenticator answer its options, and posts the form as passkeys.js does. */
  async function addPasskey(
    label = 'Laptop',
    answer: (options: PublicKeyCredentialCreationOptionsJSON) => unknown = (options) =>
      JSON.stringify(authenticator.register(options)),
  ): Promise<Response> {
    const page = await browser.get(NEW_PAGE);
    expectPage(page, 200);
    return browser.agent
      .post('/account/security/passkeys')
      .type('form')
      .send({ _csrf: csrfTokenIn(page.text), label, credential: answer(optionsOnPage(page.text)) as string });
  }

  it('lists no passkeys, and offers to add one after a code that leads to the page', async () => {
    const page = await securityPageText(browser);
    expect(page).toContain('Passkeys');
    expect(page).toContain('You have no passkeys yet.');
    expect(page).toContain('Adding a passkey needs a new code first');

    // The page itself sends back to the settings, which offer the code.
    expectRedirect(await browser.get(NEW_PAGE), '/account/security');
    expect(await securityPageText(browser)).toContain('confirm it is you with a new code');

    expectRedirect(
      await browser.submit('/account/security', '/account/security/confirm', { returnTo: NEW_PAGE }),
      '/verify',
    );
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'settings')), NEW_PAGE);
    const newPage = await browser.get(NEW_PAGE);
    expectPage(newPage, 200, /Add a passkey/);
    expect(newPage.headers['cache-control']).toBe('no-store');
    expect(newPage.text).toContain('value="Passkey"');
    expect(newPage.text).toContain('<script src="/assets/vendor/simplewebauthn-browser.js" defer></script>');
    expect(newPage.text).toContain('<script src="/assets/js/passkeys.js" defer></script>');
    const options = optionsOnPage(newPage.text);
    expect(options.rp.id).toBe(site.config.publicHost);
    expect(options.user.name).toBe('rosa');
  });

  it('adds a passkey: listed with its name, audited, and the next page suggests another name', async () => {
    await confirmSettings(site, browser);
    expectRedirect(await addPasskey('Work laptop'), '/account/security');
    const page = await securityPageText(browser);
    expect(page).toContain('Your passkey “Work laptop” was added.');
    expect(page).toMatch(/Work laptop \d+ \w+ \d{4}, \d\d:\d\d UTC Never/);
    expect(page).toContain('Authenticator app or passkey added (passkey)');
    expect(await passkeysOfRosa()).toMatchObject([
      { kind: 'passkey', label: 'Work laptop', credentialId: authenticator.credentialIds[0] },
    ]);
    expect(await site.audit.forUser((await rosa()).id, new Date(0))).toContainEqual(
      expect.objectContaining({ type: 'factor_added', detail: 'passkey' }),
    );
    // The passkeys it holds are excluded from the next one's options.
    const next = await browser.get(NEW_PAGE);
    expect(next.text).toContain('value="Passkey 2"');
    expect(optionsOnPage(next.text).excludeCredentials?.map((descriptor) => descriptor.id)).toEqual(
      authenticator.credentialIds,
    );
  });

  it('checks an answer against its page’s challenge once only', async () => {
    await confirmSettings(site, browser);
    const page = await browser.get(NEW_PAGE);
    const answer = JSON.stringify(authenticator.register(optionsOnPage(page.text)));
    const post = () =>
      browser.agent
        .post('/account/security/passkeys')
        .type('form')
        .send({ _csrf: csrfTokenIn(page.text), label: 'Laptop', credential: answer });
    expectRedirect(await post(), '/account/security');
    const again = await post();
    expectPage(again, 400, /The passkey request ran out of time/);
    expect(await passkeysOfRosa()).toHaveLength(1);
  });

  it('refuses an answer to no challenge of this session', async () => {
    await confirmSettings(site, browser);
    const made = authenticator.register({ ...optionsOnPage((await browser.get(NEW_PAGE)).text) });
    // Another browser of the same account, with its own settings code, never saw that page.
    const other = createBrowser(site.app);
    await logIn(site, other, account);
    await confirmSettings(site, other);
    const otherPage = await other.get('/account/security');
    const res = await other.agent
      .post('/account/security/passkeys')
      .type('form')
      .send({ _csrf: csrfTokenIn(otherPage.text), label: 'A', credential: JSON.stringify(made) });
    expectPage(res, 400, /The passkey request ran out of time/);
    expect(await passkeysOfRosa()).toEqual([]);
  });

  it('refuses an answer made for another site, with the page again', async () => {
    await confirmSettings(site, browser);
    const phishing = createSoftwareAuthenticator({
      origin: 'https://keyhole.example.evil',
      rpId: 'keyhole.example.evil',
    });
    const res = await addPasskey('Laptop', (options) => JSON.stringify(phishing.register(options)));
    expectPage(res, 400, /The passkey could not be checked\. Try again\./);
    expect(res.text).toMatch(/<title>Error: Add a passkey/);
    expect(res.text).toContain('href="#passkey"');
    expect(res.text).toContain('value="Laptop"');
    expect(await passkeysOfRosa()).toEqual([]);
  });

  it('answers junk, or no passkey at all (no JavaScript), with a 400 that says so', async () => {
    await confirmSettings(site, browser);
    for (const credential of ['{"id":', 'null', '[]', 'x'.repeat(15_000)]) {
      expectPage(await addPasskey('Laptop', () => credential), 400, /Your browser did not send a passkey/);
    }
    expectPage(await addPasskey('Laptop', () => ''), 400, /Passkeys need JavaScript/);
    expect(await passkeysOfRosa()).toEqual([]);
  });

  it('asks for a name first, before any passkey is checked', async () => {
    await confirmSettings(site, browser);
    const res = await addPasskey('   ');
    expectPage(res, 400, /Give the passkey a name/);
    expect(res.text).toContain('href="#label"');
    expectPage(await addPasskey('x'.repeat(61)), 400, /at most 60 characters/);
    expectPage(await addPasskey('Evil\u202Ename'), 400, /characters we cannot accept/);
    expect(await passkeysOfRosa()).toEqual([]);
  });

  it('needs a fresh settings code to add one, and refuses once it is 5 minutes old', async () => {
    await confirmSettings(site, browser);
    const page = await browser.get(NEW_PAGE);
    const answer = JSON.stringify(authenticator.register(optionsOnPage(page.text)));
    site.clock.advanceMinutes(5);
    const res = await browser.agent
      .post('/account/security/passkeys')
      .type('form')
      .send({ _csrf: csrfTokenIn(page.text), label: 'Laptop', credential: answer });
    expectRedirect(res, '/account/security');
    expect(await passkeysOfRosa()).toEqual([]);
  });

  it(`stops at ${MAX_PASSKEYS_PER_ACCOUNT} passkeys`, async () => {
    await confirmSettings(site, browser);
    for (let i = 0; i < MAX_PASSKEYS_PER_ACCOUNT; i += 1) {
      authenticator = createSoftwareAuthenticator({
        origin: site.config.publicUrl,
        rpId: site.config.publicHost,
      });
      expectRedirect(await addPasskey(`Key ${i + 1}`), '/account/security');
    }
    expectRedirect(await browser.get(NEW_PAGE), '/account/security');
    const page = await securityPageText(browser);
    expect(page).toContain(`You have ${MAX_PASSKEYS_PER_ACCOUNT} passkeys, the most an account can have.`);
    expect(page).not.toContain('Add a passkey');
  });
});

describe('the notice of a passkey added', () => {
  let mail: MailTestApp;
  afterEach(() => mail.close());

  it('emails the verified address that a passkey was added', async () => {
    mail = await createMailTestApp();
    const browser = createBrowser(mail.site.app);
    const account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await openNewestLink(mail, createBrowser(mail.site.app), 'rosa@example.com');
    await logIn(mail.site, browser, account);
    await confirmSettings(mail.site, browser);
    const authenticator = createSoftwareAuthenticator({
      origin: mail.site.config.publicUrl,
      rpId: mail.site.config.publicHost,
    });
    const page = await browser.get(NEW_PAGE);
    const res = await browser.agent
      .post('/account/security/passkeys')
      .type('form')
      .send({
        _csrf: csrfTokenIn(page.text),
        label: 'Laptop',
        credential: JSON.stringify(authenticator.register(optionsOnPage(page.text))),
      });
    expectRedirect(res, '/account/security');
    const notice = await mail.waitForMail('rosa@example.com', 2);
    expect(notice.subject).toBe('A passkey was added to your account');
    expect(visibleText(notice.text)).toContain('A passkey was added to your account.');
  });
});

describe('the passkey scripts', () => {
  let site: TestApp | undefined;
  afterEach(() => site?.close());

  it('serves @simplewebauthn/browser and passkeys.js from the site itself, cached a week in production', async () => {
    site = await createTestApp({ env: PRODUCTION_ENV });
    const library = await createBrowser(site.app).get('/assets/vendor/simplewebauthn-browser.js');
    expect(library.status).toBe(200);
    expect(library.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(library.headers['cache-control']).toBe('public, max-age=604800');
    expect(library.text).toContain('SimpleWebAuthnBrowser');
    const ours = await createBrowser(site.app).get('/assets/js/passkeys.js');
    expect(ours.status).toBe(200);
    expect(ours.text).toContain('data-passkey-options');
  });

  it('writes options JSON that no text in it can break out of', () => {
    const written = jsonForScriptElement({ name: '</script><script>alert(1)</script>&\u2028' });
    expect(written).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(written)).toEqual({ name: '</script><script>alert(1)</script>&\u2028' });
  });
});
