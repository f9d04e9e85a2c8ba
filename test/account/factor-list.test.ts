import { afterEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, type TestAccount } from '../helpers/flows.js';
import { confirmSettings, securityPageText } from '../helpers/security.js';

/**
 * The list of an account's factors on /account/security (issue 12): the phone, then its apps and
 * passkeys, each with when it was added and last used; renaming and removing one needs a fresh
 * settings code (a stolen session must not quietly remove the owner's passkey); an admin cannot
 * remove the last factor the secure area accepts; the default factor is chosen there.
 */
describe('the factor list on /account/security', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  afterEach(() => site.close());

  async function start(options: TestAppOptions = {}) {
    site = await createTestApp(options);
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'rosa' });
    await logIn(site, browser, account);
  }
  const rosa = async () => (await site.users.findByUsername('rosa'))!;
  async function givePasskey(userId: number, label = 'Work laptop', userVerified = true) {
    const added = await site.stores.factors.add(
      {
        kind: 'passkey',
        userId,
        label,
        credentialId: `credential-${label}`,
        publicKey: 'public-key',
        signCount: 0,
        transports: ['internal'],
        userVerified,
      },
      { maxPerKind: 10 },
    );
    return added!;
  }
  const auditTypes = async () => (await site.audit.recent()).map((event) => event.type);

  it('lists the phone and each passkey with when it was added and last used', async () => {
    await start();
    await givePasskey((await rosa()).id);
    const text = await securityPageText(browser);
    expect(text).toContain('Ways to confirm it is you');
    expect(text).toMatch(/•••• \d{4} · Codes by text message asked first Added .* last used/);
    expect(text).toMatch(/Work laptop · Passkey Added .* last used never/);
    // Without a fresh code, no rename or remove buttons: only the way to get one.
    expect(text).toContain('To rename or remove one, confirm it is you first.');
  });

  it('renames and removes a passkey only with a fresh settings code, and audits both', async () => {
    await start();
    const passkey = await givePasskey((await rosa()).id);
    const rename = (label: string) =>
      browser.submit('/account/security', `/account/security/factors/${passkey.id}/rename`, { label });
    const remove = () =>
      browser.submit('/account/security', `/account/security/factors/${passkey.id}/remove`);

    expectRedirect(await rename('Stolen session'), '/account/security');
    expectRedirect(await remove(), '/account/security');
    expect(await site.stores.factors.findById((await rosa()).id, passkey.id)).toMatchObject({
      label: 'Work laptop',
    });

    await confirmSettings(site, browser);
    const tooLong = await rename('x'.repeat(65));
    expectPage(tooLong, 400, /64 characters or fewer/);
    expectRedirect(await rename('  Home laptop '), '/account/security');
    expect((await site.stores.factors.findById((await rosa()).id, passkey.id))?.label).toBe('Home laptop');
    expect(await auditTypes()).toContain('factor_renamed');

    expectRedirect(await remove(), '/account/security');
    expect(await site.stores.factors.listForUser((await rosa()).id)).toEqual([]);
    expect(await auditTypes()).toContain('factor_removed');
    expect(await securityPageText(browser)).toContain('Passkey “Home laptop” was removed.');
  });

  it('answers 404 for another account’s factor or an id that is no number, and changes nothing', async () => {
    await start();
    await confirmSettings(site, browser);
    const other = await register(createBrowser(site.app), { username: 'mallory' });
    const theirs = await givePasskey((await site.users.findByUsername(other.username))!.id, 'Theirs');
    expectPage(
      await browser.submit('/account/security', `/account/security/factors/${theirs.id}/remove`),
      404,
      /not one of your factors/,
    );
    expectPage(
      await browser.submit('/account/security', `/account/security/factors/${theirs.id}/rename`, {
        label: 'Mine',
      }),
      404,
    );
    expectPage(await browser.submit('/account/security', '/account/security/factors/1e99/remove'), 404);
    expectPage(await browser.submit('/account/security', '/account/security/factors/abc/remove'), 404);
    expect((await site.stores.factors.findById(theirs.userId, theirs.id))?.label).toBe('Theirs');
  });

  it('keeps an admin’s last factor the secure area accepts when ADMIN_STEP_UP_FACTORS takes no phone codes', async () => {
    await start({ env: { ADMIN_STEP_UP_FACTORS: 'passkey,totp' } });
    await site.grantAdmin('rosa');
    const id = (await rosa()).id;
    // Confirmed by phone while the admin has no passkey yet (once one is there, it takes a passkey).
    await confirmSettings(site, browser);
    const first = await givePasskey(id, 'First');
    const second = await givePasskey(id, 'Second');
    expectRedirect(
      await browser.submit('/account/security', `/account/security/factors/${first.id}/remove`),
      '/account/security',
    );
    const refused = await browser.submit(
      '/account/security',
      `/account/security/factors/${second.id}/remove`,
    );
    expectPage(refused, 409, /last passkey or app the secure area accepts/);
    expect(await site.stores.factors.listForUser(id)).toHaveLength(1);
  });

  it('does not count a passkey made without user verification as an admin’s way into the secure area', async () => {
    // The secure area requires user verification: a security key that only asks for a touch
    // cannot open it, so it must not be what lets the admin's last real way in be removed.
    await start({ env: { ADMIN_STEP_UP_FACTORS: 'passkey,totp' } });
    await site.grantAdmin('rosa');
    const id = (await rosa()).id;
    await confirmSettings(site, browser);
    const verifying = await givePasskey(id, 'Laptop');
    const touchOnly = await givePasskey(id, 'Touch-only key', false);
    const remove = (factorId: number) =>
      browser.submit('/account/security', `/account/security/factors/${factorId}/remove`);
    expectPage(await remove(verifying.id), 409, /last passkey or app the secure area accepts/);
    // The touch-only key itself can go: the secure area never took it.
    expectRedirect(await remove(touchOnly.id), '/account/security');
    expect((await site.stores.factors.listForUser(id)).map((factor) => factor.label)).toEqual(['Laptop']);
  });

  it('lets an admin with only a passkey made without user verification remove it', async () => {
    await start({ env: { ADMIN_STEP_UP_FACTORS: 'passkey,totp' } });
    await site.grantAdmin('rosa');
    const touchOnly = await givePasskey((await rosa()).id, 'Touch-only key', false);
    // No factor the secure area takes: the settings are confirmed by phone, as before any was added.
    await confirmSettings(site, browser);
    expectRedirect(
      await browser.submit('/account/security', `/account/security/factors/${touchOnly.id}/remove`),
      '/account/security',
    );
    expect(await site.stores.factors.listForUser((await rosa()).id)).toEqual([]);
  });

  it('sets the factor asked for first, only among the ways the account has, without a code', async () => {
    await start();
    const choose = (factor: string) =>
      browser.submit('/account/security', '/account/security/default-factor', { factor });
    expectPage(await choose('passkey'), 400, /Choose one of the ways listed/);
    expectPage(await choose('carrier-pigeon'), 400, /Choose one of the ways listed/);
    await givePasskey((await rosa()).id);
    expectRedirect(await choose('passkey'), '/account/security');
    expect((await rosa()).defaultFactor).toBe('passkey');
    expect(await auditTypes()).toContain('default_factor_changed');
    // A phone default is the account's channel as well.
    expectRedirect(await choose('voice'), '/account/security');
    expect(await rosa()).toMatchObject({ defaultFactor: 'voice', preferredChannel: 'voice' });
    expect(visibleText((await browser.get('/account/security')).text)).toContain(
      'From now on you are asked for a call to your phone first.',
    );
  });
});
