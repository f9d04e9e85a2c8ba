import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { findViolations } from './axe.js';
import {
  DESKTOP,
  launchBrowser,
  newContext,
  openOutbox,
  skipBrowserTests,
  startSite,
  type RunningSite,
} from './browser.js';
import { PASSWORD, enterCode, newPerson, pathOf, textOf } from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 90_000 });

/** The newest email's link in the outbox tab (the console mailer lists each email there). */
async function newestEmailLink(outbox: Page, subject: string): Promise<string> {
  for (let tries = 0; tries < 20; tries += 1) {
    await outbox.goto('/dev/outbox');
    const newest = outbox.locator('[data-outbox-email]').first();
    if (
      (await newest.count()) > 0 &&
      (await newest.locator('[data-outbox-email-subject]').textContent()) === subject
    ) {
      return new URL((await newest.locator('a').getAttribute('href'))!).pathname;
    }
    await outbox.waitForTimeout(100);
  }
  throw new Error(`no email "${subject}" in the outbox`);
}

/** The newest code of a kind in the outbox tab ("sign-up", "settings"). */
async function newestCode(outbox: Page, kind: string): Promise<string> {
  await outbox.goto('/dev/outbox');
  const newest = (await outbox.locator('[data-outbox-text]').first().textContent()) ?? '';
  const match = newest.match(new RegExp(`Keyhole ${kind} code: (\\d+)`));
  if (!match) throw new Error(`the newest outbox message is not a ${kind} code: ${newest}`);
  return match[1]!;
}

describe.skipIf(skipBrowserTests)('deleting an account in a browser', () => {
  let browser: Browser;
  let running: RunningSite | undefined;
  let contexts: BrowserContext[] = [];

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    for (const context of contexts) await context.close();
    contexts = [];
    await running?.close();
    running = undefined;
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('confirms with a settings code and the typed name, then the emailed link in the same browser; every page passes axe', async () => {
    running = await startSite();
    const context = await newContext(browser, running.baseUrl, DESKTOP);
    contexts.push(context);
    const outbox = (await openOutbox(context)).page;
    const page = await context.newPage();
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };
    const person = newPerson();

    // Signs up with an email address, and proves it with its link.
    await page.goto('/register');
    await page.getByLabel('Username', { exact: true }).fill(person.username);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Phone number', { exact: true }).fill(person.phone);
    await page.getByLabel('Email address (optional)', { exact: true }).fill('mika@example.com');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/verify$/);
    await enterCode(page, await newestCode(outbox, 'sign-up'));
    await page.goto(await newestEmailLink(outbox, 'Confirm your email address for Keyhole'));
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Confirm my address' }).click(),
    ]);

    await page.goto('/account/delete');
    expect(await textOf(page)).toContain('Deleting your account cannot be undone');
    await check('delete, before the code');
    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Send me a code' }).click(),
    ]);
    await enterCode(page, await newestCode(outbox, 'settings'));
    expect(pathOf(page)).toBe('/account/delete');
    await check('delete, the name to type');

    await page.getByLabel('Type your username to confirm').fill('not-my-name');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Email me the deletion link' }).click(),
    ]);
    expect(await textOf(page)).toContain('That is not your username');
    expect(await page.title()).toMatch(/^Error: /);
    await check('delete, a wrong name');

    await page.getByLabel('Type your username to confirm').fill(person.username.toUpperCase());
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Email me the deletion link' }).click(),
    ]);
    expect(await textOf(page)).toContain('We sent a link to mika@example.com');
    await check('delete, link sent');
    const link = await newestEmailLink(outbox, 'Confirm the deletion of your Keyhole account');

    // Another browser (a forwarded email, a mail scanner): refused, nothing deleted.
    const elsewhere = await newContext(browser, running.baseUrl, DESKTOP);
    contexts.push(elsewhere);
    const stranger = await elsewhere.newPage();
    const refused = await stranger.goto(link);
    expect(refused?.status()).toBe(403);
    expect(await textOf(stranger)).toContain('Open this link in the browser where you asked');
    for (const violation of await findViolations(stranger))
      found.push(`delete link, another browser: ${violation}`);

    await page.goto(link);
    await check('delete link, confirm');
    await Promise.all([
      page.waitForURL(/\/account\/deleted$/),
      page.getByRole('button', { name: 'Delete my account' }).click(),
    ]);
    expect(await textOf(page)).toContain('Your account has been deleted');
    await check('deleted');
    expect(await running.site.users.findByUsername(person.username)).toBeNull();
    expect(found).toEqual([]);
  });
});
