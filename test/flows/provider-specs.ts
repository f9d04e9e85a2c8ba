import { expect } from 'vitest';
import type { Channel } from '../../src/mfa/provider.js';
import { createBrowser, type Browser, type Response } from '../helpers/agent.js';
import type { TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import {
  fictionalPhone,
  register,
  registerUnproven,
  submitCode,
  submitPassword,
  wrongFor,
  type TestAccount,
} from '../helpers/flows.js';

/**
 * The mechanics of the specs every code provider's site tests share. The specs themselves (their
 * names, and what is particular to a provider) stay in the provider's own test file.
 */

/** The code a person received for their newest challenge, as the provider's fake saw it delivered. */
export type ReceivedCode = (account: TestAccount) => string;

/**
 * The sign-up code the provider's fake delivered to a new account's number (by its channel), read
 * right after the registration form. Each provider's reader also checks that it was sent as a
 * sign-up code, as far as its fake can tell.
 */
export type SignUpCode = (account: Pick<TestAccount, 'phone' | 'channel'>) => string | Promise<string>;

/** An account made through the registration form and proven with the sign-up code the provider delivered. */
export async function registerWith(
  browser: Browser,
  signUpCode: SignUpCode,
  overrides: Partial<TestAccount> = {},
): Promise<TestAccount> {
  // Chosen here, so that the sign-up code can be looked up by the number it went to.
  const phone = overrides.phone ?? fictionalPhone();
  const channel = overrides.channel ?? 'sms';
  return register(
    browser,
    { ...overrides, phone, channel },
    { enrolCode: () => signUpCode({ phone, channel }) },
  );
}

/** Password, then the code that arrived: the browser ends up in the account area. */
export async function signInWith(
  browser: Browser,
  account: TestAccount,
  channel: Channel | undefined,
  code: (account: TestAccount) => string | Promise<string>,
) {
  expectRedirect(await submitPassword(browser, account, channel), '/verify');
  expectRedirect(await submitCode(browser, await code(account)), '/account');
}

/** A new account whose login code was just sent by SMS; the browser is on the code page. */
export async function awaitingSmsCode(
  site: TestApp,
  signUpCode: SignUpCode,
): Promise<{ browser: Browser; account: TestAccount }> {
  const browser = createBrowser(site.app);
  const account = await registerWith(browser, signUpCode);
  await submitPassword(browser, account, 'sms');
  return { browser, account };
}

/** A wrong code costs one of the code's five attempts, and the right code still works after it. */
export async function expectWrongCodeCountedAgainstTheCode(
  site: TestApp,
  { received, signUpCode }: { received: ReceivedCode; signUpCode: SignUpCode },
) {
  const { browser, account } = await awaitingSmsCode(site, signUpCode);
  const code = received(account);

  expectPage(await submitCode(browser, wrongFor(code)), 400, /That code is not right\. 4 attempts left\./);
  expectRedirect(await submitCode(browser, code), '/account');
}

/** A code past the site's own five minutes is refused as expired. */
export async function expectCodeExpiredBySite(
  site: TestApp,
  { received, signUpCode }: { received: ReceivedCode; signUpCode: SignUpCode },
) {
  const { browser, account } = await awaitingSmsCode(site, signUpCode);
  site.clock.advanceMinutes(5);

  expectPage(await submitCode(browser, received(account)), 400, /This code has expired/);
}

/**
 * The provider refuses the send with 429 and Retry-After `retryAfter`: the person sees `page`
 * with a 429, and the header is passed on. Returns the response for provider-specific checks.
 */
export async function expectSendRateLimitPassedOn(
  site: TestApp,
  fake: { failNext(mode: 429, options: { retryAfter: string }): void },
  {
    channel,
    retryAfter,
    page,
    signUpCode,
  }: { channel: Channel; retryAfter: string; page: RegExp; signUpCode: SignUpCode },
): Promise<Response> {
  const browser = createBrowser(site.app);
  const account = await registerWith(browser, signUpCode);
  fake.failNext(429, { retryAfter });

  const res = await submitPassword(browser, account, channel);
  expectPage(res, 429, page);
  expect(res.headers['retry-after']).toBe(retryAfter);
  return res;
}

/**
 * With credentials the provider refuses, no code can be sent: a sign-up lands on its code page,
 * which says so, and a login of an account that proved its number before gets "cannot be sent"
 * (503). Returns the account.
 */
export async function expectSendRefusedAsUnavailable(site: TestApp): Promise<TestAccount> {
  const signingUp = createBrowser(site.app);
  const account = await registerUnproven(signingUp);
  expectPage(await signingUp.get('/verify'), 200, /Codes cannot be sent right now/);

  // As if it had proven its number while the credentials were still right: no sign-up code
  // could reach it here.
  const user = (await site.users.findByUsername(account.username))!;
  expect(await site.users.markPhoneProven(user.id, account.phone)).toBe(true);
  expectPage(
    await submitPassword(createBrowser(site.app), account, 'sms'),
    503,
    /Codes cannot be sent right now/,
  );
  return account;
}

/** Neither the number nor its digits without the +, nor without the country code. */
function expectNoPhoneIn(logged: string, phone: string) {
  expect(logged).not.toContain(phone);
  expect(logged).not.toContain(phone.slice(1));
  expect(logged).not.toContain(phone.slice(2));
}

/** The operator can see it was an auth failure at `provider`, and nothing in `secrets`, nor the number. */
export function expectAuthFailureLoggedWithoutSecrets(
  logLines: string[],
  { provider, secrets, phone }: { provider: string; secrets: string[]; phone: string },
) {
  const logged = logLines.join('\n');
  expect(logged).toMatch(/"kind":"auth"/);
  expect(logged).toMatch(new RegExp(`"provider":"${provider}"`));
  for (const secret of secrets) expect(logged).not.toContain(secret);
  expectNoPhoneIn(logged, phone);
}

/** No code that was sent, nothing in `secrets` and no phone number appears in the log. */
export function expectNothingSecretLogged(
  logLines: string[],
  { codes, secrets, phone }: { codes: string[]; secrets: string[]; phone: string },
) {
  const logged = logLines.join('\n');
  for (const code of codes) expect(logged).not.toContain(code);
  for (const secret of secrets) expect(logged).not.toContain(secret);
  expectNoPhoneIn(logged, phone);
}

/**
 * The provider fails every request (`mode`: an error status, or no answer at all): the login gets a
 * clear page and the code page still works; once the provider is back, a resent code gets in.
 * With `undeliveredCode` (read right after the failed send), that code is also refused afterwards.
 */
export async function expectOutageSurvived(
  site: TestApp,
  fake: { setMode(mode: 503 | 'hang' | 'ok'): void },
  mode: 503 | 'hang',
  {
    received,
    undeliveredCode,
    signUpCode,
  }: { received: ReceivedCode; undeliveredCode?: () => string; signUpCode: SignUpCode },
) {
  const browser = createBrowser(site.app);
  const account = await registerWith(browser, signUpCode);
  fake.setMode(mode);

  expectPage(await submitPassword(browser, account, 'sms'), 503, /did not answer/);
  const undelivered = undeliveredCode?.();
  expectPage(await browser.get('/verify'), 200, /No code has been sent yet/);

  fake.setMode('ok');
  site.clock.advance(31_000);
  expectRedirect(await browser.submit('/verify', '/verify/resend'), '/verify');
  const delivered = received(account);
  if (undeliveredCode && undelivered !== delivered) {
    expectPage(await submitCode(browser, undelivered!), 400, /That code is not right/);
  }
  expectRedirect(await submitCode(browser, delivered), '/account');
}

/**
 * erin (an admin) signs in with a code, steps up to the admin area, and while a second browser has a login
 * of hers pending: what each browser now holds, read by `latest` right after each send.
 */
export async function stepUpWhileALoginIsPending<Code>(
  site: TestApp,
  {
    signIn,
    latest,
    signUpCode,
  }: {
    signIn: (browser: Browser, account: TestAccount) => Promise<void>;
    latest: (account: TestAccount) => Code;
    signUpCode: SignUpCode;
  },
): Promise<{ signedIn: Browser; other: Browser; pendingLogin: Code; adminCode: Code }> {
  const signedIn = createBrowser(site.app);
  const account = await registerWith(signedIn, signUpCode, { username: 'erin' });
  await site.grantAdmin('erin');
  await signIn(signedIn, account);

  const other = createBrowser(site.app);
  expectRedirect(await submitPassword(other, account, 'sms'), '/verify');
  const pendingLogin = latest(account);

  expectRedirect(await signedIn.submit('/admin', '/admin/step-up'), '/verify');
  const adminCode = latest(account);
  return { signedIn, other, pendingLogin, adminCode };
}

/**
 * A journey that exercises the log: erin (an admin) signs in, steps up, types a wrong code, and then the
 * provider fails (500) the check of the right one. Returns her account.
 */
export async function journeyEndingInAFailedCheck(
  site: TestApp,
  fake: { failNext(mode: 500): void },
  {
    signIn,
    received,
    signUpCode,
  }: {
    signIn: (browser: Browser, account: TestAccount) => Promise<void>;
    received: ReceivedCode;
    signUpCode: SignUpCode;
  },
): Promise<TestAccount> {
  const browser = createBrowser(site.app);
  const account = await registerWith(browser, signUpCode, { username: 'erin' });
  await site.grantAdmin('erin');
  await signIn(browser, account);
  await browser.submit('/admin', '/admin/step-up');
  await submitCode(browser, '000000');
  fake.failNext(500);
  await submitCode(browser, received(account));
  return account;
}
