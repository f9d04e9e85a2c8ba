import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import {
  consoleCodesPrinted,
  createTestApp,
  lastConsoleCode,
  type TestApp,
} from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { fictionalPhone, logIn, register, submitCode, type TestAccount } from '../helpers/flows.js';
import { answerWithPasskey as answerWithPasskeyOnPage, postNewPasskey } from '../helpers/passkeys.js';
import { confirmSettings } from '../helpers/security.js';
import {
  createSoftwareAuthenticator,
  type SoftwareAuthenticator,
} from '../helpers/software-authenticator.js';

/**
 * An admin's settings when the secure area takes no phone code (ADMIN_STEP_UP_FACTORS=passkey,totp).
 * Threat (security review of issue 12): someone with the admin's password and phone (a SIM swap)
 * logs in by text, confirms the settings by text, adds a passkey or an app of their own, and then
 * opens the secure area with it. Once the admin has a factor the secure area takes, confirming a
 * change takes one of those too; until then the phone does, or no first one could ever be added.
 */
describe('confirming an admin’s settings when the secure area takes no phone code', () => {
  let site: TestApp;
  let owner: Browser;
  let admin: TestAccount;
  let laptop: SoftwareAuthenticator;

  beforeEach(async () => {
    site = await createTestApp({ env: { ADMIN_USERNAMES: '', ADMIN_STEP_UP_FACTORS: 'passkey,totp' } });
    owner = createBrowser(site.app);
    laptop = createSoftwareAuthenticator({ origin: site.config.publicUrl, rpId: site.config.publicHost });
    admin = await register(owner, { username: 'root' });
    await site.grantAdmin('root');
    await logIn(site, owner, admin);
  });
  afterEach(() => site.close());

  const addPasskey = postNewPasskey;
  /** The passkey form on the code page, which asks for user verification here. */
  const answerWithPasskey = (who: Browser, device: SoftwareAuthenticator) =>
    answerWithPasskeyOnPage(who, device, {
      inspect: (options) => expect(options.userVerification).toBe('required'),
    });

  /** The attacker: the admin's password, and every text to the admin's number. */
  async function attackerSignedIn(): Promise<Browser> {
    site.clock.advanceMinutes(1);
    const attacker = createBrowser(site.app);
    await logIn(site, attacker, admin);
    return attacker;
  }

  it('are confirmed by phone until the admin has a passkey, then only by the passkey', async () => {
    // Bootstrap: nothing the secure area takes yet, so the phone confirms the settings.
    await confirmSettings(site, owner);
    expectRedirect(await addPasskey(owner, laptop, 'Laptop'), '/account/security');

    const attacker = await attackerSignedIn();
    const settingsCodes = consoleCodesPrinted(site.printed, 'settings');
    expectRedirect(await attacker.submit('/account/security', '/account/security/confirm'), '/verify');
    const page = await attacker.get('/verify');
    expectPage(page, 200, /data-passkey="authenticate"/);
    expect(page.text).not.toContain('Text a code to my phone');
    // No code is sent, asked for directly or not, and the phone is no way to finish.
    expectPage(
      await attacker.submit('/verify', '/verify/resend', { channel: 'sms' }),
      400,
      /do not take codes sent that way/,
    );
    expectPage(await attacker.submit('/verify', '/verify/resend'), 400, /do not take codes sent that way/);
    expectPage(await attacker.submit('/verify', '/verify/method', { method: 'totp' }), 400);
    expect(consoleCodesPrinted(site.printed, 'settings')).toBe(settingsCodes);

    // So nothing behind the confirmation: no passkey of theirs, no app, no new number.
    const thief = createSoftwareAuthenticator({
      origin: site.config.publicUrl,
      rpId: site.config.publicHost,
    });
    expectRedirect(await addPasskey(attacker, thief, 'Mine'), '/account/security');
    expectRedirect(
      await attacker.submit('/account/security', '/account/security/app', { code: '123456', label: 'Mine' }),
      '/account/security',
    );
    const enrolCodes = consoleCodesPrinted(site.printed, 'enrol');
    expectRedirect(
      await attacker.submit('/account/security', '/account/security/phone', {
        phone: fictionalPhone(),
        country: 'US',
      }),
      '/account/security',
    );
    expect(consoleCodesPrinted(site.printed, 'enrol')).toBe(enrolCodes);
    const root = (await site.users.findByUsername('root'))!;
    expect(root.phone).toBe(admin.phone);
    expect((await site.stores.factors.listForUser(root.id)).map((factor) => factor.label)).toEqual([
      'Laptop',
    ]);

    // The owner's passkey confirms, and the new number is then proven by a code sent to it.
    site.clock.advanceMinutes(6);
    expectRedirect(await owner.submit('/account/security', '/account/security/confirm'), '/verify');
    expectRedirect(await answerWithPasskey(owner, laptop), '/account/security');
    const newNumber = fictionalPhone();
    expectRedirect(
      await owner.submit('/account/security', '/account/security/phone', { phone: newNumber, country: 'US' }),
      '/verify',
    );
    expectRedirect(await submitCode(owner, lastConsoleCode(site.printed, 'enrol')), '/account/security');
    expect((await site.users.findByUsername('root'))!.phone).toBe(newNumber);
  });

  it('refuses a settings code sent before the admin added the passkey', async () => {
    await confirmSettings(site, owner);
    const attacker = await attackerSignedIn();
    expectRedirect(await attacker.submit('/account/security', '/account/security/confirm'), '/verify');
    const code = lastConsoleCode(site.printed, 'settings');
    expectRedirect(await addPasskey(owner, laptop, 'Laptop'), '/account/security');

    expectPage(await submitCode(attacker, code), 400, /do not take codes sent that way/);
    expect((await attacker.get('/account/security')).text).not.toContain(
      'You can change your settings until',
    );
  });
});
