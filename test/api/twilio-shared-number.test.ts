import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createApiClient, createTestApiKey, expectApiProblem, type ApiClient } from '../helpers/api.js';
import type { TestApp } from '../helpers/create-test-app.js';
import { expectRedirect, visibleText } from '../helpers/expectations.js';
import { submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { followSiteClock, startProviderSite, stopProviderSite } from '../helpers/provider-site.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio-verify-server.js';
import { registerWith } from '../flows/provider-specs.js';

const ACCOUNT_SID = `AC${'a'.repeat(32)}`;
const AUTH_TOKEN = 'twilio-auth-token-for-api-tests';
const SERVICE_SID = `VA${'c'.repeat(32)}`;

/**
 * Twilio Verify keeps one pending verification per number and re-sends its code when another is
 * started, so the adapter decides who may cancel whose (twilio-verify.ts). Threats: an API caller
 * voiding a person's pending login code without a word (the person is locked out while the API
 * keeps sending), one key voiding another's, and the other way round keys asking again and again
 * to keep a person who holds the phone from ever getting a login code.
 */
describe('the verification API and the site on one number, with Twilio Verify', () => {
  let fake: FakeTwilio;
  let site: TestApp;
  let api: ApiClient;
  let browser: Browser;
  let rosa: TestAccount;

  beforeEach(async () => {
    fake = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, serviceSid: SERVICE_SID });
    ({ site } = await startProviderSite('twilio', {
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_VERIFY_SERVICE_ID: SERVICE_SID,
      TWILIO_VERIFY_BASE_URL: fake.baseUrl,
    }));
    followSiteClock(fake, site);
    api = createApiClient(site.app, (await createTestApiKey(site, { name: 'shop' })).key);
    browser = createBrowser(site.app);
    // Rosa proves her number at sign-up: she is its proven holder.
    rosa = await registerWith(browser, ({ phone }) => fake.lastCodeFor(phone)!, { username: 'rosa' });
    site.clock.advance(31_000);
  });
  afterEach(() => stopProviderSite(site, fake));

  const newestSid = () => fake.sentCodes().at(-1)!.sid;

  it('refuses an API code (429) while a login code is pending for the number, which still works', async () => {
    expectRedirect(await submitPassword(browser, rosa, 'sms'), '/verify');
    const loginSid = newestSid();
    const loginCode = fake.lastCodeFor(rosa.phone)!;

    const refused = await api.send({ to: rosa.phone });
    expect(expectApiProblem(refused, 429, 'too-many-requests').retryAfterSeconds).toBeGreaterThan(0);
    expect(fake.verification(loginSid)!.status).toBe('pending');
    expectRedirect(await submitCode(browser, loginCode), '/account');
  });

  it('refuses a key’s code (429) while another key’s is pending for the number, which still works', async () => {
    const sent = await api.send({ to: rosa.phone });
    expect(sent.status).toBe(201);
    const code = fake.lastCodeFor(rosa.phone)!;
    const other = createApiClient(site.app, (await createTestApiKey(site, { name: 'other shop' })).key);

    expectApiProblem(await other.send({ to: rosa.phone }), 429, 'too-many-requests');
    expect((await api.check(sent.body.id, code)).body.status).toBe('approved');
  });

  it('lets a key’s new code under another label replace its own pending one, which then answers expired', async () => {
    const first = await api.send({ to: rosa.phone, label: 'checkout' });
    const firstCode = fake.lastCodeFor(rosa.phone)!;
    const second = await api.send({ to: rosa.phone, label: 'login' });
    expect(second.status).toBe(201);
    expect(fake.verification(fake.sentCodes().at(-2)!.sid)!.status).toBe('canceled');

    expect((await api.check(first.body.id, firstCode)).body).toMatchObject({ status: 'expired' });
    expect((await api.check(second.body.id, fake.lastCodeFor(rosa.phone)!)).body.status).toBe('approved');
  });

  it('lets the number’s proven holder log in over a pending API code, which then answers expired', async () => {
    const sent = await api.send({ to: rosa.phone });
    const apiSid = newestSid();
    const apiCode = fake.lastCodeFor(rosa.phone)!;

    expectRedirect(await submitPassword(browser, rosa, 'sms'), '/verify');
    expect(fake.verification(apiSid)!.status).toBe('canceled');
    expectRedirect(await submitCode(browser, fake.lastCodeFor(rosa.phone)!), '/account');

    expect((await api.check(sent.body.id, apiCode)).body).toMatchObject({ status: 'expired' });
  });

  it('makes an account that has not proven the number wait for a pending API code', async () => {
    // Kit registers with Rosa's number (a stranger, or a new phone owner): she cannot void it.
    const sent = await api.send({ to: rosa.phone });
    const apiSid = newestSid();
    const started = fake.sentCodes().length;
    const kitBrowser = createBrowser(site.app);
    const signUp = await kitBrowser.submit('/register', '/register', {
      username: 'kit',
      password: 'correct horse battery staple',
      phone: rosa.phone,
      channel: 'sms',
    });
    expectRedirect(signUp, '/verify');
    expect(visibleText((await kitBrowser.get('/verify')).text)).toContain(
      'Too many codes requested. Wait 5 minutes',
    );
    expect(fake.sentCodes()).toHaveLength(started);
    expect(fake.verification(apiSid)!.status).toBe('pending');
    expect((await api.check(sent.body.id, fake.lastCodeFor(rosa.phone)!)).body.status).toBe('approved');
  });
});
