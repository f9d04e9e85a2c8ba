import { afterEach, describe, expect, it } from 'vitest';
import { RECOVERY_CODES_OFFER_PATH, RECOVERY_CODES_PATH } from '../../src/account/recovery-code-routes.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitPassword } from '../helpers/flows.js';

/**
 * The offer makes a first set of recovery codes without a settings code only right after a login
 * that proved a second factor. Threat (attack review of issue 12): whoever knows only the password
 * of an account with two-step login off (or holds a remembered browser) makes ten codes, which
 * later get them past the second step once it is back on, and through a password reset.
 */
describe('recovery codes from the offer after a login without a second factor', () => {
  let site: TestApp;
  afterEach(() => site.close());

  it('are refused without a settings code, and the login leads to no offer', async () => {
    site = await createTestApp({ env: { MFA_POLICY: 'optional' } });
    const account = await register(
      createBrowser(site.app),
      { username: 'rosa' },
      { keepRecoveryCodesOffer: true },
    );
    const rosa = (await site.users.findByUsername('rosa'))!;
    await site.users.setTwoFactorOff(rosa.id, true);

    const stranger = createBrowser(site.app);
    // The password alone is a full login here, and goes to the account, not to the offer.
    expectRedirect(await submitPassword(stranger, account), '/account');
    const made = await stranger.submit('/account', RECOVERY_CODES_OFFER_PATH);
    expectRedirect(made, RECOVERY_CODES_PATH);
    expect(visibleText((await stranger.get(RECOVERY_CODES_PATH)).text)).toContain(
      'confirm it is you with a new code before making recovery codes',
    );
    expect(await site.stores.recoveryCodes.countUnused(rosa.id)).toBe(0);
  });
});
