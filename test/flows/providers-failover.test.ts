import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { startFakeKandy, type FakeKandy } from '../fakes/kandy-server.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio-verify-server.js';

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

  /** Password, then the code from whichever fake sent the newest one. */
  async function logIn(browser: Browser, account: TestAccount, codeFrom: 'twilio' | 'kandy') {
    expectRedirect(await submitPassword(browser, account, 'sms'), '/verify');
    const code = codeFrom === 'twilio' ? twilio.lastCodeFor(account.phone) : kandy.lastCodeFor(account.phone);
    expect(code, `a code from ${codeFrom}`).toBeDefined();
    expectRedirect(await submitCode(browser, code!), '/account');
  }

  it('offers every channel of every configured provider', async () => {
    const page = await createBrowser(site.app).get('/login');
    expect(page.text).toContain('value="sms"');
    expect(page.text).toContain('value="voice"');
    expect(await healthOf()).toEqual(['twilio:up', 'kandy:up']);
  });

  it('sends through the first provider while it is up', async () => {
    const browser = createBrowser(site.app);
    await logIn(browser, await register(browser), 'twilio');

    expect(kandy.sentCodes()).toEqual([]);
    expect(twilioChecks()).toHaveLength(1);
  });

  it('sends through the second when the first is down, verifies with the second, and returns to the first after the cooldown', async () => {
    twilio.setMode(503);
    const first = createBrowser(site.app);
    const alice = await register(first, { username: 'erin' });
    await site.grantAdmin('erin');
    await logIn(first, alice, 'kandy');
    // The code Kandy sent was checked by Kandy, never by Twilio.
    expect(kandyVerifies()).toHaveLength(1);
    expect(twilioChecks()).toEqual([]);
    expect(await healthOf()).toEqual(['twilio:failing', 'kandy:up']);

    // It keeps failing: from now on it is skipped, without waiting for it.
    const second = createBrowser(site.app);
    await logIn(second, await register(second), 'kandy');
    expect(await healthOf()).toEqual(['twilio:skipped', 'kandy:up']);
    const twilioCalls = twilio.requests.length;
    const third = createBrowser(site.app);
    await logIn(third, await register(third), 'kandy');
    expect(twilio.requests.length).toBe(twilioCalls);

    // The admin page shows it too.
    expectRedirect(await first.submit('/admin', '/admin/step-up'), '/verify');
    expectRedirect(await submitCode(first, kandy.lastCodeFor(alice.phone)!), '/admin');
    expect(visibleText((await first.get('/admin')).text)).toMatch(/twilio\s+skipped/);

    // Twilio comes back; after the cooldown it is tried again, and new codes use it.
    twilio.setMode('ok');
    site.clock.advance(30_000);
    const fourth = createBrowser(site.app);
    await logIn(fourth, await register(fourth), 'twilio');
    expect(await healthOf()).toEqual(['twilio:up', 'kandy:up']);
    expect(twilioChecks()).toHaveLength(1);
  });

  it('keeps checking a code with the provider that sent it, even when that one is now down', async () => {
    twilio.setMode('hang');
    const browser = createBrowser(site.app);
    const account = await register(browser);
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
    twilio.setMode(503);
    const browser = createBrowser(site.app);
    const account = await register(browser, { channel: 'voice' });

    expectPage(await submitPassword(browser, account, 'voice'), 503, /did not answer/);
    expect(kandy.requests).toEqual([]);
  });
});
