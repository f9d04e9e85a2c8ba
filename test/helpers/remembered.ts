import type { CookieJar } from 'cookiejar';
import { expect } from 'vitest';
import type { Browser } from './agent.js';
import { lastConsoleCode, type TestApp } from './create-test-app.js';
import { expectRedirect } from './expectations.js';
import { submitPassword, type TestAccount } from './flows.js';

/** The remembered-browser cookie's name outside production. */
export const REMEMBER_COOKIE = 'keyhole.remember';

/**
 * Password, then the login code with "Remember this browser for 30 days" ticked: the browser is
 * signed in and holds a remembered-browser cookie.
 */
export async function logInRemembered(
  site: Pick<TestApp, 'printed'>,
  browser: Browser,
  account: TestAccount,
): Promise<void> {
  expectRedirect(await submitPassword(browser, account), '/verify');
  const res = await browser.submit('/verify', '/verify', {
    code: lastConsoleCode(site.printed),
    remember: '1',
  });
  expectRedirect(res, '/account');
  expect(browser.cookie(REMEMBER_COOKIE)).toMatch(/^keyhole\.remember=[A-Za-z0-9_-]{43}$/);
}

/**
 * Logs this browser out (if it was signed in), then gives the password again: where the login
 * goes next, '/account' when the code was skipped, '/verify' when one is asked for.
 */
export async function loginAfterPassword(browser: Browser, account: TestAccount): Promise<string> {
  // A signed-in browser's login page sends it on to its account: the form to log out is there.
  const signedIn = (await browser.get('/login')).status !== 200;
  expectRedirect(await browser.submit(signedIn ? '/account' : '/login', '/logout'), '/login?signedOut');
  const res = await submitPassword(browser, account);
  expect(res.status, res.text.slice(0, 300)).toBe(303);
  return String(res.headers.location);
}

/** Puts a cookie in this browser's jar as the site would have set it (a copied cookie, say). */
export function plantCookie(browser: Browser, name: string, value: string): void {
  const jar = (browser.agent as unknown as { jar: CookieJar }).jar;
  jar.setCookie(`${name}=${value}; Path=/`, '127.0.0.1', '/');
}

/** The remembered-browser token this browser holds now. */
export function rememberedToken(browser: Browser): string {
  const cookie = browser.cookie(REMEMBER_COOKIE);
  if (!cookie) throw new Error('this browser holds no remembered-browser cookie');
  return cookie.slice(REMEMBER_COOKIE.length + 1);
}
