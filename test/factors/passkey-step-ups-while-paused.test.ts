import { afterEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { consoleCodesPrinted, createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, wrongCodesByAStranger, type TestAccount } from '../helpers/flows.js';
import { answerWithPasskey, postNewPasskey } from '../helpers/passkeys.js';
import { confirmSettings } from '../helpers/security.js';
import {
  createSoftwareAuthenticator,
  type SoftwareAuthenticator,
} from '../helpers/software-authenticator.js';

/**
 * The step-ups ("confirm it is you" and the secure area's) while code entry is paused, as the
 * login already allows (test/factors/passkey-code-page.test.ts). Threat: whoever has only the
 * password enters wrong codes after it until the account's code entry is paused, and so keeps the
 * owner, signed in elsewhere, from confirming the change of that very password: the owner's
 * passkey, whose answer nobody can guess, must still confirm it is her.
 */
describe('step-ups while a stranger’s wrong codes pause code entry', () => {
  let site: TestApp;
  let owner: Browser;
  let account: TestAccount;
  let laptop: SoftwareAuthenticator;

  afterEach(() => site.close());

  /** Rosa, signed in, with a passkey on her laptop if `withPasskey`. */
  async function start(options: { env?: Record<string, string>; withPasskey: boolean }) {
    site = await createTestApp({ env: { ADMIN_USERNAMES: '', ...options.env } });
    owner = createBrowser(site.app);
    laptop = createSoftwareAuthenticator({ origin: site.config.publicUrl, rpId: site.config.publicHost });
    account = await register(owner, { username: 'rosa' });
    await logIn(site, owner, account);
    if (options.withPasskey) await addPasskey(owner, laptop, 'Laptop');
    site.clock.advanceMinutes(6); // past the settings confirmation that added the passkey
  }

  async function addPasskey(who: Browser, device: SoftwareAuthenticator, label: string) {
    await confirmSettings(site, who);
    expectRedirect(await postNewPasskey(who, device, label), '/account/security');
  }

  /** The stranger: Rosa's password, then 10 wrong login codes, which pause her code entry. */
  async function pauseByAStranger() {
    await wrongCodesByAStranger(site, account);
    expect(await site.audit.recent(5)).toContainEqual(expect.objectContaining({ type: 'code_lockout' }));
  }

  /** What the code page says of the pause and of the passkey. */
  async function expectPausedButPasskeyWorks(who: Browser) {
    const text = visibleText((await who.get('/verify')).text);
    expect(text).toContain('code entry is paused');
    expect(text).toContain('A passkey still works.');
  }

  describe('POST /account/security/confirm', () => {
    it('opens the code page on the passkey, which opens the security settings, and sends no code', async () => {
      await start({ withPasskey: true });
      await pauseByAStranger();
      const codesBefore = consoleCodesPrinted(site.printed, 'settings');
      expectRedirect(await owner.submit('/account/security', '/account/security/confirm'), '/verify');
      await expectPausedButPasskeyWorks(owner);
      expectRedirect(await answerWithPasskey(owner, laptop), '/account/security');
      expect(consoleCodesPrinted(site.printed, 'settings')).toBe(codesBefore);
      // Confirmed: the password the stranger knows can be changed, which ends the stranger's sessions.
      expectRedirect(
        await owner.submit('/account/security', '/account/security/password', {
          current_password: account.password,
          new_password: 'a brand new passphrase for rosa',
        }),
        '/account/security',
      );
      expectPage(await owner.get('/account/security'), 200, /Your password was changed\./);
    });

    it('opens the code page on the passkey while code entry is suspended too', async () => {
      await start({ withPasskey: true });
      const rosa = (await site.users.findByUsername('rosa'))!;
      for (let failure = 0; failure < site.ceiling.maxConsecutiveFailures; failure += 1) {
        await site.ceiling.recordFailure(rosa.id);
      }
      expectRedirect(await owner.submit('/account/security', '/account/security/confirm'), '/verify');
      expect(visibleText((await owner.get('/verify')).text)).toContain('code entry is suspended');
      expectRedirect(await answerWithPasskey(owner, laptop), '/account/security');
      expect(await site.ceiling.isSuspended(rosa.id)).toBe(true);
    });

    it('still answers 429 to an account without a passkey', async () => {
      await start({ withPasskey: false });
      await pauseByAStranger();
      const refused = await owner.submit('/account/security', '/account/security/confirm');
      expectPage(refused, 429, /Too many wrong codes were entered for this account/);
    });
  });

  describe('POST /admin/step-up', () => {
    // The secure area takes phone codes before passkeys here, so the step-up opens on a code.
    const env = { ADMIN_STEP_UP_FACTORS: 'sms,voice,passkey' };

    it('opens the code page on the admin’s passkey, which opens the secure area', async () => {
      await start({ env, withPasskey: true });
      await site.grantAdmin('rosa');
      await pauseByAStranger();
      expectRedirect(await owner.submit('/admin', '/admin/step-up'), '/verify');
      await expectPausedButPasskeyWorks(owner);
      expectRedirect(await answerWithPasskey(owner, laptop), '/admin');
      expectPage(await owner.get('/admin'), 200, /Secure area/);
    });

    it('still answers 429 to an admin without a passkey', async () => {
      await start({ env, withPasskey: false });
      await site.grantAdmin('rosa');
      await pauseByAStranger();
      const refused = await owner.submit('/admin', '/admin/step-up');
      expectPage(refused, 429, /Too many wrong codes were entered for this account/);
    });
  });
});
