import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/mfa/provider.js';
import { SIGNALWIRE_VOICE_PATH } from '../../src/mfa/providers/signalwire-voice-route.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import type { TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { startProviderSite, stopProviderSite } from '../helpers/provider-site.js';
import { digitsIn, startFakeSignalWire, type FakeSignalWire } from '../fakes/signalwire-server.js';
import {
  expectAuthFailureLoggedWithoutSecrets,
  expectCodeExpiredBySite,
  expectNothingSecretLogged,
  expectOutageSurvived,
  expectSendRateLimitPassedOn,
  expectSendRefusedAsUnavailable,
  expectWrongCodeCountedAgainstTheCode,
  registerWith,
  signInWith,
  stepUpWhileALoginIsPending,
  type SignUpCode,
} from './provider-specs.js';

const PROJECT = 'b2c3d4e5-0000-4000-8000-000000000002';
const TOKEN = 'PT-signalwire-token-for-tests';
const FROM = '+12025550100';
const CALLBACK_BASE = 'https://keyhole.example.test';

describe('the site with MFA_PROVIDER=signalwire', () => {
  let fake: FakeSignalWire;
  let site: TestApp;
  let logLines: string[];

  async function startSite(env: Record<string, string> = {}) {
    ({ site, logLines } = await startProviderSite('signalwire', {
      SIGNALWIRE_SPACE: 'example',
      SIGNALWIRE_PROJECT: PROJECT,
      SIGNALWIRE_TOKEN: TOKEN,
      SIGNALWIRE_NUMBER: FROM,
      SIGNALWIRE_BASE_URL: fake.baseUrl,
      BASE_CALLBACK_URL: CALLBACK_BASE,
      ...env,
    }));
  }

  beforeEach(async () => {
    fake = await startFakeSignalWire({ projectId: PROJECT, token: TOKEN, fromNumber: FROM });
    await startSite();
  });
  afterEach(() => stopProviderSite(site, fake));

  const received = (account: TestAccount) => fake.lastCodeFor(account.phone)!;

  /** What SignalWire does when the call is answered: fetch the Url, with no cookie and no CSRF token. */
  async function fetchCallDocument(url: string) {
    expect(url.startsWith(`${CALLBACK_BASE}${SIGNALWIRE_VOICE_PATH}/`)).toBe(true);
    return request(site.app)
      .post(new URL(url).pathname)
      .type('form')
      .send({ AccountSid: PROJECT, CallSid: 'call-1', CallStatus: 'in-progress' });
  }

  /** The code as the person hears or reads it. For calls, from the document the site serves. */
  async function receivedCode(account: Pick<TestAccount, 'phone'>, channel: Channel): Promise<string> {
    if (channel === 'sms') return fake.lastCodeFor(account.phone)!;
    const call = fake.calls().at(-1)!;
    const served = await fetchCallDocument(call.url!);
    expect(served.status).toBe(200);
    expect(served.text).toBe(call.twiml);
    // Served before the session middleware: SignalWire's fetch creates no session.
    expect(served.headers['set-cookie']).toBeUndefined();
    return digitsIn(served.text)!;
  }

  const signIn = (browser: Browser, account: TestAccount, channel: Channel) =>
    signInWith(browser, account, channel, (account) => receivedCode(account, channel));

  /** The sign-up code as the person reads or hears it, after checking the message calls it one. */
  const signUpCode: SignUpCode = (account) => {
    const delivered =
      account.channel === 'sms'
        ? fake.messages().findLast((message) => message.to === account.phone)!.body
        : fake.calls().findLast((call) => call.to === account.phone)!.twiml!;
    expect(delivered).toMatch(
      account.channel === 'sms' ? /^Keyhole sign-up code: / : /Your Keyhole sign-up code is/,
    );
    return receivedCode(account, account.channel);
  };
  const register = (browser: Browser, overrides: Partial<TestAccount> = {}) =>
    registerWith(browser, signUpCode, overrides);

  describe.each<Channel>(['sms', 'voice'])('by %s', (channel) => {
    it('logs in and enters the secure area with codes the site made and SignalWire delivered', async () => {
      const browser = createBrowser(site.app);
      const account = await register(browser, { username: 'erin', channel });
      await site.grantAdmin('erin');
      await signIn(browser, account, channel);
      const loginCode = fake.lastCodeFor(account.phone)!;

      expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');
      expectPage(await submitCode(browser, loginCode), 400, /That code is not right/);
      expectRedirect(await submitCode(browser, await receivedCode(account, channel)), '/admin');
      expectPage(await browser.get('/admin'), 200, /signalwire/);

      // The sign-up code, then the login and admin codes.
      const sends = fake.requests.map((logged) => logged.path);
      const resource = channel === 'sms' ? 'Messages' : 'Calls';
      expect(sends).toEqual([
        `/api/laml/2010-04-01/Accounts/${PROJECT}/${resource}`,
        `/api/laml/2010-04-01/Accounts/${PROJECT}/${resource}`,
        `/api/laml/2010-04-01/Accounts/${PROJECT}/${resource}`,
      ]);
      expect(fake.requests.every((logged) => logged.auth === 'basic')).toBe(true);
      if (channel === 'voice') {
        for (const call of fake.calls()) expect(call.url).not.toContain(digitsIn(call.twiml!)!);
      }
    });
  });

  it('serves a call document once, only to the unguessable id, and not after the code expired', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { channel: 'voice' });
    await submitPassword(browser, account, 'voice');
    const call = fake.calls().at(-1)!;

    expect((await fetchCallDocument(call.url!)).status).toBe(200);
    const again = await fetchCallDocument(call.url!);
    expect(again.status).toBe(404);
    expect(again.text).not.toContain(digitsIn(call.twiml!)!);

    site.clock.advance(31_000);
    expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
    site.clock.advanceMinutes(5);
    expect((await fetchCallDocument(fake.calls().at(-1)!.url!)).status).toBe(404);
  });

  it('refuses a login code at the admin step, even one the code store still holds as valid for login', async () => {
    // Threat: a login code that is still live (pending in another browser) used for the secure area.
    const { signedIn, other, pendingLogin, adminCode } = await stepUpWhileALoginIsPending(site, {
      signIn: (browser, account) => signIn(browser, account, 'sms'),
      latest: received,
      signUpCode,
    });
    expectPage(await submitCode(signedIn, pendingLogin), 400, /That code is not right/);
    // The same code is still good for what it was made for: the login in the other browser.
    expectRedirect(await submitCode(other, pendingLogin), '/account');
    expectRedirect(await submitCode(signedIn, adminCode), '/admin');
  });

  it('counts a wrong code against the code', async () => {
    await expectWrongCodeCountedAgainstTheCode(site, { received, signUpCode });
  });

  it('refuses an expired code', async () => {
    await expectCodeExpiredBySite(site, { received, signUpCode });
  });

  it("passes on SignalWire's own rate limit (20429) as a wait", async () => {
    await expectSendRateLimitPassedOn(site, fake, {
      channel: 'voice',
      retryAfter: '60',
      page: /Too many codes requested\. Wait 1 minute/,
      signUpCode,
    });
  });

  it('treats wrong credentials (20003) as the site being unable to send, and logs it without secrets', async () => {
    await site.close();
    await startSite({ SIGNALWIRE_TOKEN: 'PT-not-the-right-token' });

    const account = await expectSendRefusedAsUnavailable(site);
    expectAuthFailureLoggedWithoutSecrets(logLines, {
      provider: 'signalwire',
      secrets: ['PT-not-the-right-token'],
      phone: account.phone,
    });
  });

  it.each([503, 'hang'] as const)(
    'survives an outage (%s), and the undelivered code never works',
    async (mode) => {
      await expectOutageSurvived(site, fake, mode, {
        received,
        undeliveredCode: () => digitsIn((fake.requests.at(-1)!.body as { Body: string }).Body)!,
        signUpCode,
      });
    },
  );

  it('never logs a code, the token or a full phone number through a whole journey', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'erin', channel: 'voice' });
    await site.grantAdmin('erin');
    await signIn(browser, account, 'voice');
    await browser.submit('/admin', '/admin/step-up');
    await submitCode(browser, '000000');
    await submitCode(browser, await receivedCode(account, 'voice'));

    expectNothingSecretLogged(logLines, {
      codes: fake.calls().map((call) => digitsIn(call.twiml!)!),
      secrets: [TOKEN],
      phone: account.phone,
    });
  });
});
