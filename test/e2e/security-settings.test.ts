import type { Browser } from 'playwright-core';
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
import { enterCode, fictionalPhone, newPerson, pathOf, register, submitPassword, textOf } from './pages.js';

// A real browser on a shared two-core machine, and axe on five long pages (the country list) in two colour schemes.
vi.setConfig({ testTimeout: 120_000 });

/**
 * Changing the phone number in a browser (issue 11): the settings page before and after "confirm
 * it is you", the code sent to the new number, and the page after; axe (WCAG 2.1 A and AA, light
 * and dark) on each, with and without errors.
 */
describe.skipIf(skipBrowserTests)('changing the phone number in a browser', () => {
  let browser: Browser;
  let running: RunningSite | undefined;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('confirms it is you, sends a code to the new number, and changes it once that code is entered', async () => {
    running = await startSite();
    const context = await newContext(browser, running.baseUrl, DESKTOP);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };

    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);
    await enterCode(page, (await outbox.nextCode('login')).code);
    await page.getByRole('link', { name: 'Security settings' }).click();
    await page.waitForURL(/\/account\/security$/);
    expect(await textOf(page)).toContain('Changing your password, phone number or email address');
    expect(await page.getByLabel('Phone number', { exact: true }).count()).toBe(0);
    await check('security settings, not confirmed');

    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Send me a code' }).click(),
    ]);
    await enterCode(page, (await outbox.nextCode('settings')).code);
    expect(pathOf(page)).toBe('/account/security');
    expect(await textOf(page)).toContain('You can change your settings until');
    await check('security settings, confirmed');

    // A number that is not one: the error is on the page, at its field.
    await page.getByLabel('Phone number', { exact: true }).fill('12');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Send a code to the new number' }).click(),
    ]);
    expect(await page.title()).toMatch(/^Error: Security settings/);
    expect(await textOf(page, '.error-summary')).toContain('Enter a valid phone number');
    await check('security settings, with an error');

    const newPhone = fictionalPhone();
    await page.getByLabel('Phone number', { exact: true }).fill(newPhone);
    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Send a code to the new number' }).click(),
    ]);
    expect(await textOf(page)).toContain('Enter the code we sent to your new number');
    expect(await textOf(page)).toContain(`•••• ${newPhone.slice(-4)}`);
    await check('code for the new number');

    await enterCode(page, (await outbox.nextCode('sign-up')).code);
    expect(pathOf(page)).toBe('/account/security');
    const after = await textOf(page);
    expect(after).toContain(`Your phone number is now •••• ${newPhone.slice(-4)}`);
    expect(after).toContain('Phone number changed');
    await check('security settings, after the change');
    expect(found).toEqual([]);
    expect(problems).toEqual([]);
  });
});
