import { CookieAccessInfo, type CookieJar } from 'cookiejar';
import type { Channel } from '../../src/mfa/provider.js';
import { createBrowser, type Browser } from './agent.js';
import { lastConsoleCode, type TestApp } from './create-test-app.js';
import { expectRedirect } from './expectations.js';

let nextPhone = 100;

/** A fresh fictional number (+1 202 555 0100 to 0199), different for each account a test makes. */
export function fictionalPhone(): string {
  const phone = `+1202555${String(100 + (nextPhone++ % 100)).padStart(4, '0')}`;
  return phone;
}

export const GOOD_PASSWORD = 'correct horse battery staple';

/** A six-digit code that is not `code`. */
export const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');

export interface TestAccount {
  username: string;
  password: string;
  phone: string;
  channel: Channel;
  /** Given on the registration form (optional there). */
  email?: string;
}

export interface RegisterOptions {
  /**
   * The sign-up code sent to the account's number. By default it is read from the development
   * outbox (the console provider); tests on another provider say where theirs arrives.
   */
  enrolCode?: () => string | Promise<string>;
  /**
   * Leave the recovery codes offer unanswered, so the next login leads to it (issue 12). By
   * default the account skips it at once, as most tests are not about it: their logins land on
   * /account.
   */
  keepRecoveryCodesOffer?: boolean;
}

/**
 * An account made through the registration form, its number proven with the sign-up code, as a
 * person would; then this browser forgets it all (its session, the remembered-device cookie), so
 * a test starts from a browser that never logged in, as it did before sign-up proved the number.
 */
export async function register(
  browser: Browser,
  overrides: Partial<TestAccount> = {},
  options: RegisterOptions = {},
): Promise<TestAccount> {
  const account = await registerUnproven(browser, overrides);
  const code = await (options.enrolCode ?? (() => newestOutboxCode(browser, 'sign-up')))();
  expectRedirect(await browser.submit('/verify', '/verify', { code }), '/account');
  if (!options.keepRecoveryCodesOffer) {
    expectRedirect(
      await browser.submit('/account', '/account/recovery-codes/offer/skip', { next: '/account' }),
      '/account',
    );
  }
  expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');
  forgetCookies(browser);
  return account;
}

/** The registration form alone: the browser is left on the sign-up code page. */
export async function registerUnproven(
  browser: Browser,
  overrides: Partial<TestAccount> = {},
): Promise<TestAccount> {
  const account: TestAccount = {
    username: overrides.username ?? `user${Math.random().toString(36).slice(2, 8)}`,
    password: overrides.password ?? GOOD_PASSWORD,
    phone: overrides.phone ?? fictionalPhone(),
    channel: overrides.channel ?? 'sms',
    ...(overrides.email ? { email: overrides.email } : {}),
  };
  const res = await browser.submit('/register', '/register', {
    username: account.username,
    password: account.password,
    phone: account.phone,
    channel: account.channel,
    ...(account.email ? { email: account.email } : {}),
  });
  expectRedirect(res, '/verify');
  return account;
}

/** The newest code of a kind ("sign-up", "admin", or "" for a login) in the development outbox. */
export async function newestOutboxCode(browser: Browser, kind: string): Promise<string> {
  const page = await browser.get('/dev/outbox');
  const label = `Keyhole ${kind ? `${kind} ` : ''}code`;
  const pattern = new RegExp(`${label}: (\\d+)|Your ${label} is ([\\d ]+)`);
  for (const [, text] of page.text.matchAll(/data-outbox-text>([^<]*)</g)) {
    const match = text!.match(pattern);
    if (match) return (match[1] ?? match[2]!).replace(/ /g, '');
  }
  throw new Error(`no ${label} in the outbox`);
}

/** Expires every cookie the browser holds: it is a browser that never visited. */
export function forgetCookies(browser: Browser): void {
  const jar = (browser.agent as unknown as { jar: CookieJar }).jar;
  for (const cookie of jar.getCookies(CookieAccessInfo.All)) {
    jar.setCookie(
      `${cookie.name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=${cookie.path}`,
      cookie.domain,
      cookie.path,
    );
  }
}

/** Password step only: leaves the browser on the code page. */
export async function submitPassword(browser: Browser, account: TestAccount, channel?: Channel) {
  return browser.submit('/login', '/login', {
    username: account.username,
    password: account.password,
    ...(channel ? { channel } : {}),
  });
}

export async function submitCode(browser: Browser, code: string) {
  return browser.submit('/verify', '/verify', { code });
}

/** Password and login code (read from the console provider's output): the browser is signed in. */
export async function logIn(site: Pick<TestApp, 'printed'>, browser: Browser, account: TestAccount) {
  expectRedirect(await submitPassword(browser, account), '/verify');
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
}

/**
 * A stranger with the account's password, entering wrong codes in a browser of their own (the
 * password again after every fifth, when its code closes): 10 of them pause the account's code
 * entry for everyone.
 */
export async function wrongCodesByAStranger(
  site: Pick<TestApp, 'app' | 'printed' | 'clock'>,
  account: TestAccount,
  count = 10,
): Promise<void> {
  const stranger = createBrowser(site.app);
  for (let guess = 0; guess < count; guess += 1) {
    if (guess % 5 === 0) {
      site.clock.advanceMinutes(1);
      expectRedirect(await submitPassword(stranger, account), '/verify');
    }
    await stranger.submit('/verify', '/verify', { code: wrongFor(lastConsoleCode(site.printed)) });
  }
}
