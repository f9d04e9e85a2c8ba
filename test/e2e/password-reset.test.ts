import type { Browser, BrowserContext } from 'playwright-core';
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
import { enterCode, newPerson, pathOf, register, submitPassword, textOf } from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 60_000 });

const NEW_PASSWORD = 'a brand new passphrase for the reset';

/**
 * A forgotten password, as a person walks it (issue 11): the login page's link, /forgot, the
 * email in the outbox, the link's page, the reset code, the new password, and a normal login with
 * it. Every page on the way passes axe (WCAG 2.1 A and AA, light and dark).
 */
describe.skipIf(skipBrowserTests)('resetting a forgotten password in a browser', () => {
  let browser: Browser;
  let running: RunningSite | undefined;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await context?.close();
    await running?.close();
    context = undefined;
    running = undefined;
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('goes from "Forgot your password?" to a login with the new password, every page accessible', async () => {
    running = await startSite();
    context = await newContext(browser, running.baseUrl, DESKTOP);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };

    const person = newPerson();
    await register(page, person, outbox);
    // Its address verified (the email test walks that link; this one is about the reset).
    const { users } = running.site;
    const account = (await users.findByUsername(person.username))!;
    await users.setPendingEmail(account.id, `${person.username}@example.com`);
    expect(await users.confirmEmail(account.id, `${person.username}@example.com`)).toBe('confirmed');

    await page.goto('/login');
    await Promise.all([
      page.waitForURL(/\/forgot$/),
      page.getByRole('link', { name: 'Forgot your password?' }).click(),
    ]);
    await check('forgot');
    await page.getByRole('button', { name: 'Send me a link' }).click();
    await page.waitForSelector('.error-summary');
    await check('forgot with an error');
    await page.getByLabel('Username or email address', { exact: true }).fill(person.username);
    await page.getByRole('button', { name: 'Send me a link' }).click();
    await page.waitForLoadState();
    expect(await textOf(page)).toContain('The link works for 30 minutes');
    await check('forgot, sent');

    const link = await outbox.linkInEmail('Reset your password for Keyhole');
    expect(link).toMatch(/^\/reset\/[A-Za-z0-9_-]{43}$/);
    const linkPage = await page.goto(link);
    expect(linkPage?.headers()['referrer-policy']).toBe('no-referrer');
    await check('reset link');
    await Promise.all([page.waitForURL(/\/verify$/), page.getByRole('button', { name: 'Continue' }).click()]);
    expect(await textOf(page)).toContain('Enter your reset code');
    await enterCode(page, (await outbox.nextCode('reset')).code);
    expect(pathOf(page)).toBe('/reset/password');
    await check('new password');

    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('New password again', { exact: true }).fill('not the same');
    await page.getByRole('button', { name: 'Save the new password' }).click();
    await page.waitForSelector('.error-summary');
    await check('new password with an error');
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('New password again', { exact: true }).fill(NEW_PASSWORD);
    await Promise.all([
      page.waitForURL(/\/login$/),
      page.getByRole('button', { name: 'Save the new password' }).click(),
    ]);
    expect(await textOf(page)).toContain('Your password was changed. Log in with it.');

    await page.goto(link);
    expect(await textOf(page)).toContain('This link no longer works');
    await check('reset link, used');

    await submitPassword(page, person, { password: NEW_PASSWORD });
    await enterCode(page, (await outbox.nextCode('login')).code);
    expect(pathOf(page)).toBe('/account');
    expect(found).toEqual([]);
  });
});
