import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { findViolations } from './axe.js';
import {
  DESKTOP,
  PHONE,
  launchBrowser,
  newContext,
  openOutbox,
  skipBrowserTests,
  startSite,
  type RunningSite,
} from './browser.js';
import { enterCode, newPerson, pathOf, register, submitPassword, textOf } from './pages.js';

// A real browser on a shared two-core machine, and axe on each page in two colour schemes.
vi.setConfig({ testTimeout: 120_000 });

const CODE = /[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/g;

/** Whether the page is wider than its screen (a phone would scroll sideways). */
const overflowsSideways = async (page: Page) =>
  (await page.evaluate(
    'document.documentElement.scrollWidth > document.documentElement.clientWidth',
  )) as boolean;

/**
 * Recovery codes in a browser (issue 12): the offer after a login, the codes shown once with
 * their download and print button (the site's own script, CSP intact), the codes page, and a
 * login with a code when the phone is lost; axe (WCAG 2.1 A and AA, light and dark) on each, on a
 * desktop and a phone.
 */
describe.skipIf(skipBrowserTests)('recovery codes in a browser', () => {
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

  for (const [device, options] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    it(`offers codes after a login, shows them once to download or print, then the page of the set and a login with one (${device})`, async () => {
      running = await startSite();
      const context = await newContext(browser, running.baseUrl, options);
      const outbox = await openOutbox(context);
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      const found: string[] = [];
      const check = async (name: string) => {
        for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
        if (await overflowsSideways(page)) found.push(`${name}: wider than the screen`);
      };

      const person = newPerson();
      await register(page, person, outbox, { keepRecoveryCodesOffer: true });
      await submitPassword(page, person);
      await enterCode(page, (await outbox.nextCode('login')).code);
      // The login of an account without codes leads to the offer.
      expect(pathOf(page)).toBe('/account/recovery-codes/offer');
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(
        'Save recovery codes in case you lose your phone',
      );
      await check('the offer');

      await Promise.all([
        page.waitForNavigation(),
        page.getByRole('button', { name: 'Make my recovery codes' }).click(),
      ]);
      const shown = (await textOf(page, '.recovery-codes')).match(CODE) ?? [];
      expect(shown).toHaveLength(10);
      expect(await textOf(page)).toContain('this is the only time we show them');
      await check('the codes, shown once');

      // The print button is the site's own script (no inline script): it is there, and prints.
      await page.evaluate('window.printed = 0; window.print = () => { window.printed += 1; }');
      await page.getByRole('button', { name: 'Print' }).click();
      expect(await page.evaluate('window.printed')).toBe(1);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Download as text' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe('keyhole-recovery-codes.txt');
      const file = await readFile((await download.path())!, 'utf8');
      expect(file.match(CODE)).toEqual(shown);

      await Promise.all([
        page.waitForNavigation(),
        page.getByRole('button', { name: 'I have saved these codes' }).click(),
      ]);
      expect(pathOf(page)).toBe('/account');
      expect(await textOf(page)).not.toContain('You have no recovery codes');

      await page.goto('/account/recovery-codes');
      const setPage = await textOf(page);
      expect(setPage).toContain('Codes left 10 of 10');
      for (const code of shown) expect(setPage).not.toContain(code);
      await check('the page of the set');
      await page.goto('/account/security');
      expect(await textOf(page, '#recovery-title + p + dl')).toContain('10 of 10');

      // The phone lost: the password, then "Try another way", then a recovery code.
      await Promise.all([
        page.waitForURL(/\/login\?signedOut$/),
        page.getByRole('button', { name: 'Log out' }).first().click(),
      ]);
      await submitPassword(page, person);
      await Promise.all([
        page.waitForURL(/\/verify$/),
        page.getByRole('button', { name: 'Use a recovery code' }).click(),
      ]);
      await check('the code page, recovery code');
      await page.getByLabel('Recovery code', { exact: true }).fill(shown[4]!.toLowerCase());
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Verify' }).click()]);
      expect(pathOf(page)).toBe('/account');
      expect(found).toEqual([]);
      expect(problems).toEqual([]);
    });
  }
});
