import { Secret, TOTP } from 'otpauth';
import type { Browser } from 'playwright-core';
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
import { enterCode, newPerson, pathOf, register, submitPassword, textOf, wrongCodeFor } from './pages.js';

// A real browser on a shared two-core machine, and axe on five pages in two colour schemes.
vi.setConfig({ testTimeout: 120_000 });

/**
 * Setting up an authenticator app in a browser (issue 12): the security page's section, the
 * set-up behind "confirm it is you", the QR code and the key as a person reads them, a wrong code,
 * then the code an app computes from that key (otpauth, at the site's clock); axe (WCAG 2.1 A and
 * AA, light and dark) on each page, on a desktop and on a phone.
 */
describe.skipIf(skipBrowserTests)('setting up an authenticator app in a browser', () => {
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
    it(`enrols an app from the key on the page (${device})`, async () => {
      running = await startSite();
      const site = running.site;
      const context = await newContext(browser, running.baseUrl, options);
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
      await page.goto('/account/security');
      await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
      await page.waitForURL(/\/account\/security\/app$/);
      expect(await textOf(page)).toContain('First, confirm it is you');
      await check('set-up, not confirmed');

      await Promise.all([
        page.waitForURL(/\/verify$/),
        page.getByRole('button', { name: 'Send me a code' }).click(),
      ]);
      await enterCode(page, (await outbox.nextCode('settings')).code);
      expect(pathOf(page)).toBe('/account/security/app');
      const qr = page.getByRole('img', { name: /QR code for your authenticator app/ });
      expect(await qr.locator('svg path').count()).toBeGreaterThan(0);
      expect((await qr.boundingBox())!.width).toBeGreaterThan(150);
      const secret = (await page.locator('[data-secret-key]').innerText()).replace(/\s+/g, '');
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      await check('set-up, QR code');

      const codeNow = () =>
        TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: site.clock.now().getTime() });
      await page.getByLabel('Name for this app').fill('Work phone');
      await page.getByLabel('Code from the app').fill(wrongCodeFor(codeNow()));
      await Promise.all([
        page.waitForNavigation(),
        page.getByRole('button', { name: 'Add the app' }).click(),
      ]);
      expect(await page.title()).toMatch(/^Error: Set up an authenticator app/);
      expect(await textOf(page, '.error-summary')).toContain('That code is not the one your app shows now');
      // The same key: the app already holds it.
      expect((await page.locator('[data-secret-key]').innerText()).replace(/\s+/g, '')).toBe(secret);
      await check('set-up, wrong code');

      await page.getByLabel('Code from the app').fill(codeNow());
      await Promise.all([
        page.waitForURL(/\/account\/security$/),
        page.getByRole('button', { name: 'Add the app' }).click(),
      ]);
      const after = await textOf(page);
      expect(after).toContain('Your authenticator app “Work phone” was added.');
      expect(after).toContain('Work phone is set up');
      await check('security settings, with an app');
      expect(found).toEqual([]);
      expect(problems).toEqual([]);
    });
  }
});
