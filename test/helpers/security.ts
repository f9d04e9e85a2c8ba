import { expect } from 'vitest';
import type { Browser } from './agent.js';
import { lastConsoleCode, type TestApp } from './create-test-app.js';
import { expectRedirect, visibleText } from './expectations.js';
import { submitCode } from './flows.js';
import { linkPathIn, type MailTestApp } from './mail.js';

/** "Confirm it is you" on /account/security, with the settings code the console provider printed. */
export async function confirmSettings(site: Pick<TestApp, 'printed'>, browser: Browser): Promise<void> {
  expectRedirect(await browser.submit('/account/security', '/account/security/confirm'), '/verify');
  expectRedirect(await submitCode(browser, lastConsoleCode(site.printed, 'settings')), '/account/security');
}

/** Opens the newest link mailed to `address` (in a browser of its own, as a mail client would). */
export async function openNewestLink(mail: MailTestApp, browser: Browser, address: string, count = 1) {
  const link = linkPathIn(await mail.waitForMail(address, count));
  const page = await browser.submit(link, link);
  expect(page.status, page.text.slice(0, 300)).toBe(200);
}

/** The session's cookie as this browser sends it ("mfa.sid=s%3A..."), and the session id in it. */
export function sessionIdOf(browser: Browser): string {
  const cookie = browser.cookie('mfa.sid');
  if (!cookie) throw new Error('this browser holds no session cookie');
  return decodeURIComponent(cookie.split('=')[1]!).slice(2).split('.')[0]!;
}

/** What /account/security shows, as text. */
export async function securityPageText(browser: Browser): Promise<string> {
  return visibleText((await browser.get('/account/security')).text);
}
