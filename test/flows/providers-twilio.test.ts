import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/mfa/provider.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { startFakeTwilio, TWILIO_VALIDITY_MS, type FakeTwilio } from '../fakes/twilio-verify-server.js';

const ACCOUNT_SID = `AC${'a'.repeat(32)}`;
const AUTH_TOKEN = 'twilio-auth-token-for-tests';
const SERVICE_SID = `VA${'b'.repeat(32)}`;

describe('the site with MFA_PROVIDER=twilio', () => {
  let fake: FakeTwilio;
  let site: TestApp;
  let logLines: string[];
  /** Moves Twilio's clock without the site's, to expire a code at Twilio only. */
  let twilioAheadMs: number;

  async function startSite(env: Record<string, string> = {}) {
    logLines = [];
    site = await createTestApp({
      env: {
        MFA_PROVIDER: 'twilio',
        ADMIN_USERNAMES: 'erin',
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_VERIFY_SERVICE_ID: SERVICE_SID,
        TWILIO_VERIFY_BASE_URL: fake.baseUrl,
        ...env,
      },
      providerTimeoutMs: 300,
      logLines,
    });
    fake.setClock(() => new Date(site.clock.now().getTime() + twilioAheadMs));
  }

  beforeEach(async () => {
    twilioAheadMs = 0;
    fake = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, serviceSid: SERVICE_SID });
    await startSite();
  });
  afterEach(async () => {
    site.close();
    await fake.close();
  });

  const checks = () => fake.requests.filter((request) => request.path.endsWith('/VerificationCheck'));
  const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');

  async function signIn(browser: Browser, account: TestAccount, channel?: Channel) {
    expectRedirect(await submitPassword(browser, account, channel), '/verify');
    expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/account');
  }

  describe.each<Channel>(['sms', 'voice'])('by %s', (channel) => {
    it('logs in and enters the secure area with codes from Twilio Verify, each its own verification', async () => {
      const browser = createBrowser(site.app);
      const account = await register(browser, { username: 'erin', channel });
      const loginPage = await browser.get('/login');
      expect(loginPage.text).toContain('value="sms"');
      expect(loginPage.text).toContain('value="voice"');

      await signIn(browser, account, channel);
      const loginCode = fake.lastCodeFor(account.phone)!;

      expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
      // The login code is refused at the admin step.
      expectPage(await submitCode(browser, loginCode), 400, /That code is not right/);
      expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/admin');
      expectPage(await browser.get('/admin'), 200, /twilio/);

      const starts = fake.requests.filter((request) => request.path.endsWith('/Verifications'));
      expect(starts.map((request) => request.body)).toEqual([
        { To: account.phone, Channel: channel === 'sms' ? 'sms' : 'call' },
        { To: account.phone, Channel: channel === 'sms' ? 'sms' : 'call' },
      ]);
      const [login, admin] = fake.sentCodes();
      expect(login!.sid).not.toBe(admin!.sid);
      // Every check names its own verification, never just the number.
      expect(checks().map((request) => (request.body as Record<string, string>).VerificationSid)).toEqual([
        login!.sid,
        admin!.sid,
        admin!.sid,
      ]);
    });
  });

  it('refuses a login code at the admin step even though Twilio would have re-sent that very code', async () => {
    // Threat: Twilio keeps one pending verification per number and re-sends its code, so a login
    // code pending in one browser could otherwise come back as the "admin" code in another.
    const signedIn = createBrowser(site.app);
    const account = await register(signedIn, { username: 'erin' });
    await signIn(signedIn, account, 'sms');

    const other = createBrowser(site.app);
    expectRedirect(await submitPassword(other, account, 'sms'), '/verify');
    const pendingLogin = fake.sentCodes().at(-1)!;

    expectRedirect(await signedIn.submit('/admin', '/admin/step-up'), '/verify');
    const adminCode = fake.sentCodes().at(-1)!;
    expect(adminCode.sid).not.toBe(pendingLogin.sid);
    expect(fake.verification(pendingLogin.sid)!.status).toBe('canceled');

    expectPage(await submitCode(signedIn, pendingLogin.code), 400, /That code is not right/);
    expectPage(await submitCode(other, pendingLogin.code), 400, /This code has expired/);
    expectRedirect(await submitCode(signedIn, adminCode.code), '/admin');
  });

  it('counts a wrong code against the code', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await submitPassword(browser, account, 'sms');

    const code = fake.lastCodeFor(account.phone)!;
    expectPage(await submitCode(browser, wrongFor(code)), 400, /That code is not right\. 4 attempts left\./);
    expectRedirect(await submitCode(browser, code), '/account');
  });

  it('refuses a code the site considers expired without asking Twilio', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await submitPassword(browser, account, 'sms');
    site.clock.advanceMinutes(5);

    expectPage(await submitCode(browser, fake.lastCodeFor(account.phone)!), 400, /This code has expired/);
    expect(checks()).toEqual([]);
  });

  it('shows a code Twilio has expired (20404) as expired, and a new one works', async () => {
    await site.close();
    await startSite({ MFA_CODE_TTL_MINUTES: '15' });
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await submitPassword(browser, account, 'sms');
    twilioAheadMs = TWILIO_VALIDITY_MS;

    expectPage(await submitCode(browser, fake.lastCodeFor(account.phone)!), 400, /This code has expired/);
    expect(checks().at(-1)!.status).toBe(404);

    site.clock.advance(31_000);
    expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
    expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/account');
  });

  it("passes on Twilio's own send limit (60203) as a wait, with Retry-After", async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    fake.failNext(429, { retryAfter: '120' });

    const res = await submitPassword(browser, account, 'sms');
    expectPage(res, 429, /Too many codes requested\. Wait 2 minutes/);
    expect(res.headers['retry-after']).toBe('120');
  });

  it('treats wrong credentials (20003) as the site being unable to send, and logs it without secrets', async () => {
    await site.close();
    await startSite({ TWILIO_AUTH_TOKEN: 'not-the-right-token' });
    const browser = createBrowser(site.app);
    const account = await register(browser);

    expectPage(await submitPassword(browser, account, 'sms'), 503, /Codes cannot be sent right now/);
    const logged = logLines.join('\n');
    expect(logged).toMatch(/"kind":"auth"/);
    expect(logged).toMatch(/"provider":"twilio"/);
    expect(logged).not.toContain('not-the-right-token');
    expect(logged).not.toContain(account.phone.slice(2));
  });

  it.each([503, 'hang'] as const)(
    'survives an outage (%s): a clear page, then codes again once Twilio is back',
    async (mode) => {
      const browser = createBrowser(site.app);
      const account = await register(browser);
      fake.setMode(mode);

      expectPage(await submitPassword(browser, account, 'sms'), 503, /did not answer/);
      expectPage(await browser.get('/verify'), 200, /No code has been sent yet/);

      fake.setMode('ok');
      site.clock.advance(31_000);
      expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
      expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/account');
    },
  );

  it('never logs a code, the auth token or a full phone number through a whole journey', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'erin' });
    await signIn(browser, account, 'voice');
    await browser.submit('/admin', '/admin/step-up');
    await submitCode(browser, '000000');
    fake.failNext(500);
    await submitCode(browser, fake.lastCodeFor(account.phone)!);

    const logged = logLines.join('\n');
    for (const sent of fake.sentCodes()) expect(logged).not.toContain(sent.code);
    expect(logged).not.toContain(AUTH_TOKEN);
    expect(logged).not.toContain(account.phone.slice(2));
  });
});
