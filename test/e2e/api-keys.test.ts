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

// A real browser on a shared two-core machine, and six pages each checked by axe twice (light and
// dark): this journey gets more time than the others.
vi.setConfig({ testTimeout: 120_000 });

const KEY_PATTERN = /^kh_test_[A-Za-z0-9_-]{43}$/;

/**
 * An admin makes an API key, copies it from the one page that shows it, and revokes it (issue 13):
 * every page passes axe (WCAG 2.1 A and AA, light and dark), with and without errors.
 */
describe.skipIf(skipBrowserTests)('API keys in the secure area, in a browser', () => {
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

  it('makes a key shown once, with a working Copy button, then revokes it; each page passes axe', async () => {
    running = await startSite();
    context = await newContext(browser, running.baseUrl, DESKTOP);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: running.baseUrl });
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };

    const person = newPerson({ username: 'ada' });
    await register(page, person, outbox);
    await running.site.grantAdmin('ada');
    await submitPassword(page, person);
    await enterCode(page, (await outbox.nextCode('login')).code);
    await page.goto('/admin');
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.waitForURL(/\/verify$/);
    await enterCode(page, (await outbox.nextCode('admin')).code);

    await Promise.all([
      page.waitForURL(/\/admin\/api-keys$/),
      page.getByRole('link', { name: 'Manage API keys' }).click(),
    ]);
    expect(await textOf(page)).toContain('No API keys yet.');
    await check('API keys, none yet');

    // No name, no channel: the error summary names both, and each field is marked.
    await page.getByLabel('Text messages').uncheck();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Create key' }).click()]);
    expect(await textOf(page)).toContain('There is a problem: Give the key a name. (and 1 more below)');
    await check('API keys, form with errors');

    await page.getByLabel('Name', { exact: true }).fill('Shop checkout');
    await page.getByLabel('Text messages').check();
    await page.getByLabel('Voice calls').check();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Create key' }).click()]);
    expect(await page.locator('h1').innerText()).toBe('Your new API key');
    const key = (await page.locator('#api-key').innerText()).trim();
    expect(key).toMatch(KEY_PATTERN);
    expect(await textOf(page)).toContain('it will not be shown again');
    await check('the new key, shown once');

    // The Copy button appears where the script runs, and puts exactly the key on the clipboard.
    await page.getByRole('button', { name: 'Copy the key' }).click();
    await expect.poll(() => page.locator('[data-copy-api-key-status]').innerText()).toBe('Copied.');
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(key);

    await Promise.all([
      page.waitForURL(/\/admin\/api-keys$/),
      page.getByRole('link', { name: 'I have copied the key' }).click(),
    ]);
    const list = await textOf(page);
    expect(list).toContain(`${key.slice(0, 12)}…`);
    expect(list).not.toContain(key);
    await check('API keys, one active');

    await Promise.all([
      page.waitForURL(/\/revoke$/),
      page.getByRole('link', { name: 'Revoke the key Shop checkout' }).click(),
    ]);
    await check('revoke a key');
    await Promise.all([
      page.waitForURL(/\/admin\/api-keys$/),
      page.getByRole('button', { name: 'Revoke key' }).click(),
    ]);
    expect(pathOf(page)).toBe('/admin/api-keys');
    expect(await textOf(page)).toContain('is revoked: the API refuses it from now on.');
    await check('API keys, one revoked');
    expect(found).toEqual([]);
  });
});
