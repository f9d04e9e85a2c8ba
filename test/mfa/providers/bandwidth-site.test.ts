import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../../src/mfa/provider.js';
import { createBrowser, csrfTokenIn, type Browser } from '../../helpers/agent.js';
import type { TestApp } from '../../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../../helpers/expectations.js';
import { submitCode, submitPassword, type TestAccount } from '../../helpers/flows.js';
import { followSiteClock, startProviderSite, stopProviderSite } from '../../helpers/provider-site.js';
import { startFakeBandwidth, type FakeBandwidth } from '../../fakes/bandwidth-server.js';
import {
  awaitingSmsCode,
  expectAuthFailureLoggedWithoutSecrets,
  expectNothingSecretLogged,
  registerWith,
  signInWith,
  type SignUpCode,
} from '../../flows/provider-specs.js';

const CREDENTIALS = { accountId: '9900001', username: 'api-user', password: 'api-password-for-tests' };

describe('the site with MFA_PROVIDER=bandwidth', () => {
  let fake: FakeBandwidth;
  let site: TestApp;
  let logLines: string[];

  beforeEach(async () => {
    fake = await startFakeBandwidth({
      ...CREDENTIALS,
      messagingApplicationId: 'msg-app-1',
      voiceApplicationId: 'voice-app-1',
    });
    ({ site, logLines } = await startProviderSite(
      'bandwidth',
      {
        BW_ACCOUNT_ID: CREDENTIALS.accountId,
        BW_USERNAME: CREDENTIALS.username,
        BW_PASSWORD: CREDENTIALS.password,
        BW_MESSAGING_APPLICATION_ID: 'msg-app-1',
        BW_VOICE_APPLICATION_ID: 'voice-app-1',
        BW_NUMBER: '+12025550100',
        BW_MFA_BASE_URL: fake.baseUrl,
      },
      { providerTimeoutMs: 400 },
    ));
    followSiteClock(fake, site);
  });
  afterEach(() => stopProviderSite(site, fake));

  const loginCode = (account: TestAccount) => fake.lastCodeFor(account.phone, 'login')!;
  const signIn = (browser: Browser, account: TestAccount, channel: Channel) =>
    signInWith(browser, account, channel, loginCode);
  // Sent in a Bandwidth scope of its own ("enrol-…"), as every challenge is.
  const signUpCode: SignUpCode = ({ phone }) => fake.lastCodeFor(phone, 'enrol')!;
  const register = (browser: Browser, overrides: Partial<TestAccount> = {}) =>
    registerWith(browser, signUpCode, overrides);
  const verifies = () => fake.requests.filter((request) => request.path.endsWith('/code/verify'));
  const scopeOf = (request: { body: unknown }) => (request.body as { scope: string }).scope;

  describe.each<Channel>(['sms', 'voice'])('by %s', (channel) => {
    it('logs in and steps up with codes from Bandwidth, each in its own scope', async () => {
      const browser = createBrowser(site.app);
      const account = await register(browser, { username: 'erin', channel });
      const usedSignUpCode = fake.lastCodeFor(account.phone, 'enrol')!;
      await site.grantAdmin('erin');
      // Bandwidth would accept the used sign-up code again in its own scope, but not for a login.
      expectRedirect(await submitPassword(browser, account, channel), '/verify');
      if (usedSignUpCode !== fake.lastCodeFor(account.phone, 'login')) {
        expectPage(await submitCode(browser, usedSignUpCode), 400, /That code is not right/);
      }
      expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone, 'login')!), '/account');
      const loginCode = fake.lastCodeFor(account.phone, 'login')!;

      expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
      // Bandwidth itself checks scopes: the login code is not valid for "admin" there either.
      expectPage(await submitCode(browser, loginCode), 400, /That code is not right/);
      expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone, 'admin')!), '/admin');
      expectPage(await browser.get('/admin'), 200, /Recent security events/);

      const sends = fake.requests.filter(
        (request) => request.path.includes('/code/') && !request.path.endsWith('/verify'),
      );
      // The sign-up code, then the login and admin codes.
      expect(sends.map((request) => request.path)).toEqual([
        `/api/v1/accounts/${CREDENTIALS.accountId}/code/${channel === 'sms' ? 'messaging' : 'voice'}`,
        `/api/v1/accounts/${CREDENTIALS.accountId}/code/${channel === 'sms' ? 'messaging' : 'voice'}`,
        `/api/v1/accounts/${CREDENTIALS.accountId}/code/${channel === 'sms' ? 'messaging' : 'voice'}`,
      ]);
      // Each challenge has a Bandwidth scope of its own, named after the kind of code.
      const [signUpScope, loginScope, adminScope] = sends.map(scopeOf);
      expect(signUpScope).toMatch(/^enrol-[\w-]{16}$/);
      expect(loginScope).toMatch(/^login-[\w-]{16}$/);
      expect(adminScope).toMatch(/^admin-[\w-]{16}$/);
      for (const send of sends) {
        expect(send.body).toMatchObject({
          to: account.phone,
          from: '+12025550100',
          applicationId: channel === 'sms' ? 'msg-app-1' : 'voice-app-1',
          digits: 6,
        });
      }
      expect(sends.every((request) => request.auth === 'basic')).toBe(true);
    });
  });

  it('never lets the same Bandwidth code in twice, though Bandwidth would accept it again', async () => {
    // Threat: replaying an accepted code from a copy of the half-logged-in session.
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const pending = await submitPassword(browser, account, 'sms');
    const pendingCookie = setCookieHeaders(pending)
      .find((cookie) => cookie.startsWith('mfa.sid='))!
      .split(';')[0]!;
    const token = csrfTokenIn((await browser.get('/verify')).text);
    const code = fake.lastCodeFor(account.phone, 'login')!;
    expectRedirect(await submitCode(browser, code), '/account');

    const replay = await createBrowser(site.app)
      .agent.post('/verify')
      .set('Cookie', pendingCookie)
      .type('form')
      .send({ code, _csrf: token });
    // The old session died when the code was accepted, and its form token with it.
    expectPage(replay, 403);
    // Bandwidth checked the sign-up code once, then the login code once: never the replay.
    expect(verifies().map(scopeOf)).toEqual([
      expect.stringMatching(/^enrol-/),
      expect.stringMatching(/^login-/),
    ]);
  });

  it('refuses a code that a resend replaced, though Bandwidth keeps it valid for its window', async () => {
    const { browser, account } = await awaitingSmsCode(site, signUpCode);
    const replaced = fake.lastCodeFor(account.phone, 'login')!;
    site.clock.advance(30_000);
    expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
    const current = fake.lastCodeFor(account.phone, 'login')!;
    if (replaced !== current) expectPage(await submitCode(browser, replaced), 400, /not right/);
    expectRedirect(await submitCode(browser, current), '/account');
  });

  it('refuses a code sent to another session of the same account', async () => {
    // Threat: with the password, starting a second login and using the victim's code in it.
    const victim = createBrowser(site.app);
    const account = await register(victim);
    await submitPassword(victim, account, 'sms');
    const victimsCode = fake.lastCodeFor(account.phone, 'login')!;
    const attacker = createBrowser(site.app);
    await submitPassword(attacker, account, 'sms');
    const attackersCode = fake.lastCodeFor(account.phone, 'login')!;
    if (victimsCode !== attackersCode) expectPage(await submitCode(attacker, victimsCode), 400, /not right/);
    expectRedirect(await submitCode(victim, victimsCode), '/account');
  });

  it('refuses a used code replayed in a later login', async () => {
    const { browser, account } = await awaitingSmsCode(site, signUpCode);
    const used = fake.lastCodeFor(account.phone, 'login')!;
    expectRedirect(await submitCode(browser, used), '/account');
    await browser.submit('/account', '/logout');
    site.clock.advance(50_000);
    const later = createBrowser(site.app);
    await submitPassword(later, account, 'sms');
    if (used !== fake.lastCodeFor(account.phone, 'login')) {
      expectPage(await submitCode(later, used), 400, /not right/);
    }
  });

  it('asks Bandwidth for a window of the code’s age, with half a minute for Bandwidth’s clock', async () => {
    const { browser, account } = await awaitingSmsCode(site, signUpCode);
    site.clock.advance(2 * 60_000 + 5000);
    await submitCode(browser, fake.lastCodeFor(account.phone, 'login')!);
    // The check after the sign-up code's own (at registration).
    expect(verifies()).toHaveLength(2);
    const verify = verifies().at(-1)!;
    expect(verify.body).toMatchObject({ to: account.phone, expirationTimeInMinutes: 3 });
    expect((verify.body as { scope: string }).scope).toMatch(/^login-/);
  });

  it('takes the right code typed just before a whole minute, though Bandwidth made it a moment before we recorded it', async () => {
    // Threat: a voice call reads the code 20 to 40 s after the send, so people type it near the
    // first minute; Bandwidth's clock for the code started before ours (the send's round trip).
    let bandwidthAheadMs = 0;
    followSiteClock(fake, site, () => bandwidthAheadMs);
    const { browser, account } = await awaitingSmsCode(site, signUpCode);
    site.clock.advance(58_900);
    bandwidthAheadMs = 1_500;
    expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone, 'login')!), '/account');
    expect(verifies().at(-1)!.body).toMatchObject({ expirationTimeInMinutes: 2 });
  });

  describe('when Bandwidth fails, the person gets a clear page and the site stays up', () => {
    let browser: Browser;
    let account: TestAccount;
    beforeEach(async () => {
      browser = createBrowser(site.app);
      account = await register(browser);
    });

    const cases: [string, Parameters<FakeBandwidth['failNext']>[0], number, RegExp][] = [
      ['a bad number (400)', 400, 400, /We could not send a code to this number/],
      ['bad credentials (401)', 401, 503, /Codes cannot be sent right now/],
      ['no MFA access (403)', 403, 503, /Codes cannot be sent right now/],
      ['a rate limit (429)', 429, 429, /Too many codes requested/],
      ['a server error (500)', 500, 503, /did not answer/],
      ['a garbage answer', 'garbage', 503, /did not answer/],
      ['no answer at all', 'hang', 503, /did not answer/],
    ];

    it.each(cases)('%s', async (_name, mode, status, message) => {
      fake.failNext(mode);
      const res = await submitPassword(browser, account, 'sms');
      expectPage(res, status, message);
      expect(res.text).toMatch(/href="\/verify"/);

      // The code page still works and the person can try again once Bandwidth is back.
      const page = await browser.get('/verify');
      expectPage(page, 200, /No code has been sent yet/);
      expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
      expectRedirect(await submitCode(browser, fake.lastCodeFor(account.phone, 'login')!), '/account');
      expect((await browser.get('/healthz')).status).toBe(200);
    });

    it('logs an authentication failure for the operator without secrets or numbers', async () => {
      fake.failNext(401);
      await submitPassword(browser, account, 'sms');
      expectAuthFailureLoggedWithoutSecrets(logLines, {
        provider: 'bandwidth',
        secrets: [CREDENTIALS.password],
        phone: account.phone,
      });
    });

    it('keeps a 503 on the code check from counting as a valid code', async () => {
      await submitPassword(browser, account, 'sms');
      fake.failNext(500);
      expectPage(await submitCode(browser, fake.lastCodeFor(account.phone, 'login')!), 503, /did not answer/);
      expectRedirect(await browser.get('/account'), '/login?next=%2Faccount');
    });

    it('treats Bandwidth’s own attempt limit (429 on verify) as a dead code', async () => {
      await submitPassword(browser, account, 'sms');
      fake.failNext(429);
      expectPage(await submitCode(browser, '123456'), 400, /Too many wrong attempts for this code/);
    });
  });

  it('never logs a code, a password or a full phone number through a whole journey', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'erin' });
    await site.grantAdmin('erin');
    await signIn(browser, account, 'sms');
    await browser.submit('/admin', '/admin/step-up');
    await submitCode(browser, '000000');
    await submitCode(browser, fake.lastCodeFor(account.phone, 'admin')!);
    fake.failNext(500);
    site.clock.advance(60_000);
    await browser.submit('/account', '/logout');
    await submitPassword(browser, account, 'voice');

    const logged = logLines.join('\n');
    // The log did record the journey (every request, and the provider's failure)...
    expect(logged).toMatch(/"path":"\/verify","status":303/);
    expect(logged).toMatch(/code provider failed/);
    // ...and none of its secrets.
    expectNothingSecretLogged(logLines, {
      codes: fake.sentCodes().map((sent) => sent.code),
      secrets: [account.password],
      phone: account.phone,
    });
  });
});
