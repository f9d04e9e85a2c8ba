import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { findViolations } from './axe.js';
import {
  PHONE,
  launchBrowser,
  newContext,
  openOutbox,
  skipBrowserTests,
  startSite,
  type RunningSite,
} from './browser.js';
import { enterCode, newPerson, pathOf, register, submitPassword, textOf } from './pages.js';

// A real browser on a shared two-core machine, and axe on several long pages in two colour schemes.
vi.setConfig({ testTimeout: 120_000 });

/**
 * "Remember this browser" and two-step login (MFA_POLICY=optional) in a browser (issue 12): the
 * box on the login's code page, the next login without a code, the settings sections before and
 * after "confirm it is you", forgetting a browser, turning two-step login off; axe (WCAG 2.1 A and
 * AA, light and dark) on each, on a phone's screen.
 */
describe.skipIf(skipBrowserTests)('remembered browsers and two-step login in a browser', () => {
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

  // On a phone's screen, where the list's table stacks (the other settings journeys run on a desktop's).
  it('remembers this browser, lists it, forgets it, and turns two-step login off', async () => {
    running = await startSite({ env: { MFA_POLICY: 'optional' } });
    const context = await newContext(browser, running.baseUrl, PHONE);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };
    const logOut = () =>
      Promise.all([
        page.waitForURL(/\/login\?signedOut$/),
        page.getByRole('button', { name: 'Log out' }).first().click(),
      ]);

    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);
    await page.getByLabel('Remember this browser for 30 days').check();
    await enterCode(page, (await outbox.nextCode('login')).code);
    expect(pathOf(page)).toBe('/account');

    // The next login in this browser: the password, and straight in.
    await logOut();
    await submitPassword(page, person);
    await page.waitForURL(/\/account$/);

    await page.goto('/account/security');
    const before = await textOf(page);
    expect(before).toContain('Remembered browsers');
    expect(before).toContain('Two-step login');
    expect(before).toContain('To turn two-step login off, confirm it is you first.');
    await check('security settings with a remembered browser, not confirmed');

    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Send me a code' }).click(),
    ]);
    await enterCode(page, (await outbox.nextCode('settings')).code);
    expect(pathOf(page)).toBe('/account/security');
    await check('security settings with a remembered browser, confirmed');

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: /^Forget .+, remembered / }).click(),
    ]);
    const afterForget = await textOf(page);
    expect(afterForget).toContain('That browser is forgotten');
    expect(afterForget).toContain('No browser is remembered.');
    await check('security settings after forgetting a browser');

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Turn two-step login off' }).click(),
    ]);
    const off = await textOf(page);
    expect(off).toContain('Two-step login is off: your password alone logs you in.');
    await check('security settings, two-step login off');

    await logOut();
    await submitPassword(page, person);
    await page.waitForURL(/\/account$/);
    expect(found).toEqual([]);
    expect(problems).toEqual([]);
  });
});
