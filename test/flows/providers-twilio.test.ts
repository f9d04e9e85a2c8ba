import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/mfa/provider.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import type { TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { submitCode, type TestAccount } from '../helpers/flows.js';
import { followSiteClock, startProviderSite, stopProviderSite } from '../helpers/provider-site.js';
import { startFakeTwilio, TWILIO_VALIDITY_MS, type FakeTwilio } from '../fakes/twilio-verify-server.js';
import {
  awaitingSmsCode,
  expectAuthFailureLoggedWithoutSecrets,
  expectCodeExpiredBySite,
  expectNothingSecretLogged,
  expectOutageSurvived,
  expectSendRateLimitPassedOn,
  expectSendRefusedAsUnavailable,
  expectWrongCodeCountedAgainstTheCode,
  journeyEndingInAFailedCheck,
  registerWith,
  signInWith,
  stepUpWhileALoginIsPending,
  type SignUpCode,
} from './provider-specs.js';

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
    ({ site, logLines } = await startProviderSite('twilio', {
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_VERIFY_SERVICE_ID: SERVICE_SID,
      TWILIO_VERIFY_BASE_URL: fake.baseUrl,
      ...env,
    }));
    followSiteClock(fake, site, () => twilioAheadMs);
  }

  beforeEach(async () => {
    twilioAheadMs = 0;
    fake = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, serviceSid: SERVICE_SID });
    await startSite();
  });
  afterEach(() => stopProviderSite(site, fake));

  const checks = () => fake.requests.filter((request) => request.path.endsWith('/VerificationCheck'));
  const received = (account: TestAccount) => fake.lastCodeFor(account.phone)!;
  // Twilio writes its own message, so a sign-up code looks like any other there: it is the one
  // verification started for the new number.
  const signUpCode: SignUpCode = ({ phone, channel }) => {
    const started = fake.sentCodes().filter((sent) => sent.to === phone);
    expect(started.map((sent) => sent.channel)).toEqual([channel === 'sms' ? 'sms' : 'call']);
    return started[0]!.code;
  };
  const signIn = (browser: Browser, account: TestAccount, channel?: Channel) =>
    signInWith(browser, account, channel, received);

  describe.each<Channel>(['sms', 'voice'])('by %s', (channel) => {
    it('logs in and enters the secure area with codes from Twilio Verify, each its own verification', async () => {
      const browser = createBrowser(site.app);
      const account = await registerWith(browser, signUpCode, { username: 'erin', channel });
      await site.grantAdmin('erin');
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

      // The sign-up code, then the login and admin codes.
      const starts = fake.requests.filter((request) => request.path.endsWith('/Verifications'));
      expect(starts.map((request) => request.body)).toEqual([
        { To: account.phone, Channel: channel === 'sms' ? 'sms' : 'call' },
        { To: account.phone, Channel: channel === 'sms' ? 'sms' : 'call' },
        { To: account.phone, Channel: channel === 'sms' ? 'sms' : 'call' },
      ]);
      const [signUp, login, admin] = fake.sentCodes();
      expect(new Set([signUp!.sid, login!.sid, admin!.sid]).size).toBe(3);
      // Every check names its own verification, never just the number.
      expect(checks().map((request) => (request.body as Record<string, string>).VerificationSid)).toEqual([
        signUp!.sid,
        login!.sid,
        admin!.sid,
        admin!.sid,
      ]);
    });
  });

  it('refuses a login code at the admin step even though Twilio would have re-sent that very code', async () => {
    // Threat: Twilio keeps one pending verification per number and re-sends its code, so a login
    // code pending in one browser could otherwise come back as the "admin" code in another.
    const { signedIn, other, pendingLogin, adminCode } = await stepUpWhileALoginIsPending(site, {
      signIn: (browser, account) => signIn(browser, account, 'sms'),
      latest: () => fake.sentCodes().at(-1)!,
      signUpCode,
    });
    expect(adminCode.sid).not.toBe(pendingLogin.sid);
    expect(fake.verification(pendingLogin.sid)!.status).toBe('canceled');

    expectPage(await submitCode(signedIn, pendingLogin.code), 400, /That code is not right/);
    expectPage(await submitCode(other, pendingLogin.code), 400, /This code has expired/);
    expectRedirect(await submitCode(signedIn, adminCode.code), '/admin');
  });

  it('counts a wrong code against the code', async () => {
    await expectWrongCodeCountedAgainstTheCode(site, { received, signUpCode });
  });

  it('refuses a code the site considers expired without asking Twilio', async () => {
    await expectCodeExpiredBySite(site, { received, signUpCode });
    // The one check is the sign-up code's, at registration.
    expect(checks().map((request) => (request.body as Record<string, string>).VerificationSid)).toEqual([
      fake.sentCodes()[0]!.sid,
    ]);
  });

  it('shows a code Twilio has expired (20404) as expired, and a new one works', async () => {
    await site.close();
    await startSite({ MFA_CODE_TTL_MINUTES: '15' });
    const { browser, account } = await awaitingSmsCode(site, signUpCode);
    twilioAheadMs = TWILIO_VALIDITY_MS;

    expectPage(await submitCode(browser, fake.lastCodeFor(account.phone)!), 400, /This code has expired/);
    expect(checks().at(-1)!.status).toBe(404);

    site.clock.advance(31_000);
    expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
    expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/account');
  });

  it("passes on Twilio's own send limit (60203) as a wait, with Retry-After", async () => {
    await expectSendRateLimitPassedOn(site, fake, {
      channel: 'sms',
      retryAfter: '120',
      page: /Too many codes requested\. Wait 2 minutes/,
      signUpCode,
    });
  });

  it('treats wrong credentials (20003) as the site being unable to send, and logs it without secrets', async () => {
    await site.close();
    await startSite({ TWILIO_AUTH_TOKEN: 'not-the-right-token' });

    const account = await expectSendRefusedAsUnavailable(site);
    expectAuthFailureLoggedWithoutSecrets(logLines, {
      provider: 'twilio',
      secrets: ['not-the-right-token'],
      phone: account.phone,
    });
  });

  it.each([503, 'hang'] as const)(
    'survives an outage (%s): a clear page, then codes again once Twilio is back',
    async (mode) => {
      await expectOutageSurvived(site, fake, mode, { received, signUpCode });
    },
  );

  it('never logs a code, the auth token or a full phone number through a whole journey', async () => {
    const account = await journeyEndingInAFailedCheck(site, fake, {
      signIn: (browser, account) => signIn(browser, account, 'voice'),
      received,
      signUpCode,
    });

    expectNothingSecretLogged(logLines, {
      codes: fake.sentCodes().map((sent) => sent.code),
      secrets: [AUTH_TOKEN],
      phone: account.phone,
    });
  });
});
