import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { startFakeKandy, type FakeKandy } from '../fakes/kandy-server.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio-verify-server.js';
import { registerWith } from './provider-specs.js';

const TWILIO = {
  accountSid: `AC${'c'.repeat(32)}`,
  authToken: 'twilio-token-for-tests',
  serviceSid: `VA${'d'.repeat(32)}`,
};
const KANDY = { clientId: 'PRIV-failover-tests', clientSecret: 'kandy-secret-for-tests' };

describe('MFA_PROVIDER=twilio,kandy: failover', () => {
  let twilio: FakeTwilio;
  let kandy: FakeKandy;
  let site: TestApp;

  beforeEach(async () => {
    twilio = await startFakeTwilio(TWILIO);
    kandy = await startFakeKandy(KANDY);
    site = await createTestApp({
      env: {
        MFA_PROVIDER: 'twilio,kandy',
        MFA_PROVIDER_COOLDOWN_SECONDS: '30',
        TWILIO_ACCOUNT_SID: TWILIO.accountSid,
        TWILIO_AUTH_TOKEN: TWILIO.authToken,
        TWILIO_VERIFY_SERVICE_ID: TWILIO.serviceSid,
        TWILIO_VERIFY_BASE_URL: twilio.baseUrl,
        KANDY_BASE_URL: kandy.baseUrl,
        KANDY_CLIENT_ID: KANDY.clientId,
        KANDY_CLIENT_SECRET: KANDY.clientSecret,
      },
      providerTimeoutMs: 300,
    });
    twilio.setClock(() => site.clock.now());
    kandy.setClock(() => site.clock.now());
  });
  afterEach(async () => {
    await site.close();
    await Promise.all([twilio.close(), kandy.close()]);
  });

  const twilioChecks = () => twilio.requests.filter((logged) => logged.path.endsWith('/VerificationCheck'));
  const kandyVerifies = () => kandy.requests.filter((logged) => logged.path.endsWith('/verify'));
  const healthOf = async () =>
    (
      (await createBrowser(site.app).get('/healthz')).body as { providers: { name: string; state: string }[] }
    ).providers.map((provider) => `${provider.name}:${provider.state}`);

  const newestCodeFrom = (codeFrom: 'twilio' | 'kandy', phone: string) => {
    const code = codeFrom === 'twilio' ? twilio.lastCodeFor(phone) : kandy.lastCodeFor(phone);
    expect(code, `a code from ${codeFrom}`).toBeDefined();
    return code!;
  };

  /** Password, then the code from whichever fake sent the newest one. */
  async function logIn(browser: Browser, account: TestAccount, codeFrom: 'twilio' | 'kandy') {
    expectRedirect(await submitPassword(browser, account, 'sms'), '/verify');
    expectRedirect(await submitCode(browser, newestCodeFrom(codeFrom, account.phone)), '/account');
  }

  /** An account made and proven with the sign-up code `codeFrom` delivered. */
  const register = (browser: Browser, codeFrom: 'twilio' | 'kandy', overrides: Partial<TestAccount> = {}) =>
    registerWith(browser, ({ phone }) => newestCodeFrom(codeFrom, phone), overrides);

  it('offers every channel of every configured provider', async () => {
    const page = await createBrowser(site.app).get('/login');
    expect(page.text).toContain('value="sms"');
    expect(page.text).toContain('value="voice"');
    expect(await healthOf()).toEqual(['twilio:up', 'kandy:up']);
  });

  it('sends through the first provider while it is up', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, 'twilio');
    await logIn(browser, account, 'twilio');

    expect(kandy.sentCodes()).toEqual([]);
    // The sign-up code and the login code, each checked by Twilio.
    const [signUp, login] = twilio.sentCodes();
    expect(twilioChecks().map((logged) => (logged.body as Record<string, string>).VerificationSid)).toEqual([
      signUp!.sid,
      login!.sid,
    ]);
  });

  it('sends through the second when the first is down, verifies with the second, and returns to the first after the cooldown', async () => {
    twilio.setMode(503);
    const first = createBrowser(site.app);
    const alice = await register(first, 'kandy', { username: 'erin' });
    // The sign-up code Kandy sent was checked by Kandy, never by Twilio.
    expect(kandyVerifies()).toHaveLength(1);
    expect(twilioChecks()).toEqual([]);
    expect(await healthOf()).toEqual(['twilio:failing', 'kandy:up']);
    await site.grantAdmin('erin');
    await logIn(first, alice, 'kandy');
    // So was the login code.
    expect(kandyVerifies()).toHaveLength(2);
    expect(twilioChecks()).toEqual([]);

    // It kept failing (the sign-up code, then the login code): from now on it is skipped, without
    // waiting for it.
    expect(await healthOf()).toEqual(['twilio:skipped', 'kandy:up']);
    const twilioCalls = twilio.requests.length;
    const second = createBrowser(site.app);
    await logIn(second, await register(second, 'kandy'), 'kandy');
    expect(twilio.requests.length).toBe(twilioCalls);

    // The admin page shows it too.
    expectRedirect(await first.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(first, kandy.lastCodeFor(alice.phone)!), '/admin');
    expect(visibleText((await first.get('/admin')).text)).toMatch(/twilio\s+skipped/);

    // Twilio comes back; after the cooldown it is tried again, and new codes use it.
    twilio.setMode('ok');
    site.clock.advance(30_000);
    const third = createBrowser(site.app);
    const thirdAccount = await register(third, 'twilio');
    await logIn(third, thirdAccount, 'twilio');
    expect(await healthOf()).toEqual(['twilio:up', 'kandy:up']);
    // The third account's sign-up code and login code, both sent and checked by Twilio.
    const [signUp, login] = twilio.sentCodes();
    expect([signUp!.to, login!.to]).toEqual([thirdAccount.phone, thirdAccount.phone]);
    expect(twilioChecks().map((logged) => (logged.body as Record<string, string>).VerificationSid)).toEqual([
      signUp!.sid,
      login!.sid,
    ]);
  });

  it('keeps checking a code with the provider that sent it, even when that one is now down', async () => {
    twilio.setMode('hang');
    const browser = createBrowser(site.app);
    const account = await register(browser, 'kandy');
    expectRedirect(await submitPassword(browser, account, 'sms'), '/verify');
    const code = kandy.lastCodeFor(account.phone)!;

    twilio.setMode('ok');
    kandy.setMode(503);
    expectPage(await submitCode(browser, code), 503, /did not answer/);
    expect(twilioChecks()).toEqual([]);

    kandy.setMode('ok');
    expectRedirect(await submitCode(browser, code), '/account');
  });

  it('has nowhere to send a voice code while Twilio is down, and says so', async () => {
    // Signed up by voice while Twilio was up.
    const browser = createBrowser(site.app);
    const account = await register(browser, 'twilio', { channel: 'voice' });
    twilio.setMode(503);

    expectPage(await submitPassword(browser, account, 'voice'), 503, /did not answer/);
    expect(kandy.requests).toEqual([]);
  });
});
