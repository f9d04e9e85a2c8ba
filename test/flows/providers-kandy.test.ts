import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import type { TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { followSiteClock, startProviderSite, stopProviderSite } from '../helpers/provider-site.js';
import { startFakeKandy, type FakeKandy } from '../fakes/kandy-server.js';
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

const CLIENT_ID = 'PRIV-keyhole-tests';
const CLIENT_SECRET = 'kandy-client-secret-for-tests';

describe('the site with MFA_PROVIDER=kandy', () => {
  let fake: FakeKandy;
  let site: TestApp;
  let logLines: string[];
  /** Moves Kandy's clock without the site's, to expire a code at Kandy only. */
  let kandyAheadMs: number;

  async function startSite(env: Record<string, string> = {}) {
    ({ site, logLines } = await startProviderSite('kandy', {
      KANDY_BASE_URL: fake.baseUrl,
      KANDY_CLIENT_ID: CLIENT_ID,
      KANDY_CLIENT_SECRET: CLIENT_SECRET,
      ...env,
    }));
    followSiteClock(fake, site, () => kandyAheadMs);
  }

  beforeEach(async () => {
    kandyAheadMs = 0;
    fake = await startFakeKandy({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    await startSite();
  });
  afterEach(() => stopProviderSite(site, fake));

  const verifies = () => fake.requests.filter((logged) => logged.path.endsWith('/verify'));
  const received = (account: TestAccount) => fake.lastCodeFor(account.phone)!;
  const signIn = (browser: Browser, account: TestAccount) => signInWith(browser, account, 'sms', received);
  /** What each code Kandy sent was for, oldest first, as its message names it. */
  const purposesSent = () =>
    fake.sentCodes().map((sent) => /^Keyhole (sign-up|admin) code/.exec(sent.message)?.[1] ?? 'login');
  const signUpCode: SignUpCode = ({ phone }) => {
    const sent = fake.sentCodes().findLast((entry) => entry.to === phone)!;
    expect(sent.message).toMatch(/^Keyhole sign-up code /);
    return sent.code;
  };
  const register = (browser: Browser, overrides: Partial<TestAccount> = {}) =>
    registerWith(browser, signUpCode, overrides);

  it('logs in and enters the secure area by SMS with codes from Kandy, each checked by its own codeId', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'erin' });
    await site.grantAdmin('erin');
    await signIn(browser, account);
    const loginCode = fake.lastCodeFor(account.phone)!;

    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
    expectPage(await submitCode(browser, loginCode), 400, /That code is not right/);
    expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/admin');
    expectPage(await browser.get('/admin'), 200, /kandy/);

    expect(purposesSent()).toEqual(['sign-up', 'login', 'admin']);
    const [signUp, login, admin] = fake.sentCodes();
    expect(verifies().map((logged) => logged.path)).toEqual([
      `/cpaas/auth/v1/${fake.userId}/codes/${signUp!.codeId}/verify`,
      `/cpaas/auth/v1/${fake.userId}/codes/${login!.codeId}/verify`,
      `/cpaas/auth/v1/${fake.userId}/codes/${admin!.codeId}/verify`,
      `/cpaas/auth/v1/${fake.userId}/codes/${admin!.codeId}/verify`,
    ]);
    // The site's name, and the origin-bound line WebOTP reads (the host of PUBLIC_URL).
    expect(signUp!.message).toMatch(/^Keyhole sign-up code \(do not share it\):\n\n@localhost #\d{6}$/);
    expect(login!.message).toMatch(/^Keyhole code \(do not share it\):\n\n@localhost #\d{6}$/);
    expect(admin!.message).toMatch(/^Keyhole admin code \(do not share it\):\n\n@localhost #\d{6}$/);
    // One token served the whole journey.
    expect(fake.tokensIssued()).toBe(1);
  });

  describe('Kandy has no voice', () => {
    it('offers only text messages on the login page', async () => {
      const page = await createBrowser(site.app).get('/login');

      expect(page.text).toContain('value="sms"');
      expect(page.text).not.toContain('value="voice"');
    });

    it('tells a person whose saved way is voice that calls are not available here, and sends by SMS instead', async () => {
      const browser = createBrowser(site.app);
      const account = await register(browser, { channel: 'sms' });
      // Saved while the site used a provider with voice calls.
      site.users.setPreferredChannel((await site.users.findByUsername(account.username))!.id, 'voice');

      // No channel chosen on the form: the saved one (voice) is used, and cannot be.
      expectRedirect(await submitPassword(browser, account), '/verify');
      expect(purposesSent()).toEqual(['sign-up']);
      const page = await browser.get('/verify');
      expectPage(page, 200);
      const text = visibleText(page.text);
      expect(text).toContain('Codes cannot be sent by voice call here');
      expect(text).toContain('Send by text message instead');
      expect(text).not.toContain('Call me instead');

      // The plain "send" button falls back to the one way that works here.
      expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
      expectPage(await browser.get('/verify'), 200, /text message/);
      expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone)!), '/account');

      // SMS is now the saved way: the next login goes straight out by SMS.
      expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');
      site.clock.advance(31_000);
      await signIn(browser, account);
    });

    it('offers and accepts only text messages when registering', async () => {
      const browser = createBrowser(site.app);
      const form = await browser.get('/register');
      expect(form.text).not.toContain('value="voice"');
      const res = await browser.submit('/register', '/register', {
        username: 'voicefan',
        password: 'correct horse battery staple',
        phone: '+12025550150',
        channel: 'voice',
      });
      expectPage(res, 400, /Codes cannot be sent that way here/);
    });

    it('refuses a voice code asked for on the code page', async () => {
      const browser = createBrowser(site.app);
      const account = await register(browser);
      await submitPassword(browser, account, 'sms');
      site.clock.advance(31_000);

      const res = await browser.submit('/verify', '/verify/resend', { channel: 'voice' });
      expectPage(res, 400, /cannot be sent/);
      expect(purposesSent()).toEqual(['sign-up', 'login']);
    });
  });

  it('refuses a login code at the admin step, even one Kandy still holds as valid for login', async () => {
    // Threat: a login code that is still live (pending in another browser) used for the secure area.
    const { signedIn, other, pendingLogin, adminCode } = await stepUpWhileALoginIsPending(site, {
      signIn,
      latest: received,
      signUpCode,
    });
    if (pendingLogin !== adminCode) {
      expectPage(await submitCode(signedIn, pendingLogin), 400, /That code is not right/);
    }
    // Kandy alone would accept it, for its own codeId: the login in the other browser.
    expectRedirect(await submitCode(other, pendingLogin), '/account');
    expectRedirect(await submitCode(signedIn, adminCode), '/admin');
  });

  it('counts a wrong code against the code', async () => {
    await expectWrongCodeCountedAgainstTheCode(site, { received, signUpCode });
  });

  it('refuses a code the site considers expired without asking Kandy', async () => {
    await expectCodeExpiredBySite(site, { received, signUpCode });
    // The one check is the sign-up code's, at registration.
    expect(verifies().map((logged) => logged.path)).toEqual([
      `/cpaas/auth/v1/${fake.userId}/codes/${fake.sentCodes()[0]!.codeId}/verify`,
    ]);
    expect(purposesSent()).toEqual(['sign-up', 'login']);
  });

  it('refuses a code Kandy has expired (Kandy cannot say why, so it reads as not right)', async () => {
    const { browser, account } = await awaitingSmsCode(site, signUpCode);
    kandyAheadMs = 5 * 60_000;

    expectPage(await submitCode(browser, fake.lastCodeFor(account.phone)!), 400, /That code is not right/);
    expect(verifies().at(-1)!.status).toBe(404);
  });

  it("passes on Kandy's own rate limit (429) as a wait", async () => {
    // Someone else's login first, so the token is in hand and the 429 answers the send itself.
    const earlier = createBrowser(site.app);
    await signIn(earlier, await register(earlier));

    await expectSendRateLimitPassedOn(site, fake, {
      channel: 'sms',
      retryAfter: '90',
      page: /Too many codes requested/,
      signUpCode,
    });
    expect(fake.requests.at(-1)).toMatchObject({ path: `/cpaas/auth/v1/${fake.userId}/codes`, status: 429 });
  });

  it('treats refused client credentials as the site being unable to send, and logs it without secrets', async () => {
    await site.close();
    await startSite({ KANDY_CLIENT_SECRET: 'not-the-right-secret' });

    const account = await expectSendRefusedAsUnavailable(site);
    expectAuthFailureLoggedWithoutSecrets(logLines, {
      provider: 'kandy',
      secrets: ['not-the-right-secret'],
      phone: account.phone,
    });
  });

  it.each([503, 'hang'] as const)(
    'survives an outage (%s): a clear page, then codes again once Kandy is back',
    async (mode) => {
      await expectOutageSurvived(site, fake, mode, { received, signUpCode });
    },
  );

  it('never logs a code, the secret, a token or a full phone number through a whole journey', async () => {
    const account = await journeyEndingInAFailedCheck(site, fake, { signIn, received, signUpCode });

    expectNothingSecretLogged(logLines, {
      codes: fake.sentCodes().map((sent) => sent.code),
      secrets: [CLIENT_SECRET, 'eyJ' /* a token */],
      phone: account.phone,
    });
  });
});
