import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
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
import {
  enterCode,
  newPerson,
  pathOf,
  submitPassword,
  submitRegistration,
  textOf,
  wrongCodeFor,
} from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 60_000 });

const JOURNEYS = [
  { channel: 'sms', device: 'desktop', viewport: DESKTOP },
  { channel: 'voice', device: 'phone', viewport: PHONE },
  { channel: 'voice', device: 'desktop', viewport: DESKTOP },
  { channel: 'sms', device: 'phone', viewport: PHONE },
] as const;

describe.skipIf(skipBrowserTests)('the whole site in a browser', () => {
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

  it.each(JOURNEYS)(
    'registers, logs in by $channel on a $device, enters the secure area with its own code, and logs out',
    async ({ channel, viewport }) => {
      const person = newPerson({ channel });
      running = await startSite();
      const { baseUrl } = running;
      const context = await newContext(browser, baseUrl, viewport);
      // Everything comes from the site itself (no CDN), and nothing breaks the CSP or throws.
      const elsewhere: string[] = [];
      const problems: string[] = [];
      context.on('request', (request) => {
        if (!request.url().startsWith(baseUrl)) elsewhere.push(request.url());
      });
      const outbox = await openOutbox(context);
      const page = await context.newPage();
      page.on('console', (message) => {
        // A 400 after a wrong code is the page working as designed; Chromium logs it all the same.
        if (message.text().startsWith('Failed to load resource: the server responded with a status of 4'))
          return;
        if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(error.message));
      // Every stylesheet, script and icon loads: a 4xx document is the site working, a 4xx asset is not.
      page.on('response', (response) => {
        if (response.request().resourceType() !== 'document' && response.status() >= 400) {
          problems.push(`${response.status()} for ${new URL(response.url()).pathname}`);
        }
      });
      // On a phone each table row is a card, its cells one under another with their column's name
      // beside the value. A name that wraps to two lines must make its cell taller, not run into the
      // next cell's text. Returns how many labelled cells it checked (none on a desktop).
      const tooTall: string[] = [];
      const checkStackedLabels = async () => {
        const cells = (await page.evaluate(`[...document.querySelectorAll('.stack-table td')]
          .map((td) => ({ td, before: getComputedStyle(td, '::before'), style: getComputedStyle(td) }))
          .filter(({ before }) => before.content !== 'none' && before.display !== 'none')
          .map(({ td, before, style }) => ({
            label: td.dataset.label,
            room: td.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom),
            height: parseFloat(before.height),
          }))`)) as { label: string; room: number; height: number }[];
        for (const cell of cells) {
          // A pixel for rounding: clientHeight is a whole number, the rest are not.
          if (cell.height > cell.room + 1) {
            tooTall.push(`${pathOf(page)}: "${cell.label}" is ${cell.height}px in a ${cell.room}px cell`);
          }
        }
        return cells.length;
      };
      // No page is wider than the screen: nothing to scroll sideways, on a phone either. And the
      // stylesheet is really applied (an unstyled page would pass axe and the rest). Then the
      // stacked tables' labels, above.
      const wider: string[] = [];
      const checkLayout = async () => {
        const overflow = await page.evaluate(
          'document.documentElement.scrollWidth - document.documentElement.clientWidth',
        );
        if (overflow !== 0) wider.push(`${pathOf(page)} by ${String(overflow)}px`);
        const radius = await page.evaluate(
          "getComputedStyle(document.querySelector('.card')).borderTopLeftRadius",
        );
        expect(radius, `the stylesheet is applied on ${pathOf(page)}`).not.toBe('0px');
        return checkStackedLabels();
      };

      // Sign-up: the form, then the code that proves the number, which signs the person in.
      await submitRegistration(page, person);
      const last4 = person.phone.slice(-4);
      const sentBy = person.channel === 'sms' ? 'text message' : 'voice call';
      expect(await textOf(page)).toContain(`We sent a 6-digit sign-up code by ${sentBy} to •••• ${last4}.`);
      await checkLayout();
      await enterCode(page, (await outbox.nextCode('sign-up')).code);
      expect(pathOf(page)).toBe('/account');
      await Promise.all([
        page.waitForURL(/\/login\?signedOut$/),
        page.getByRole('button', { name: 'Log out' }).first().click(),
      ]);
      expect(await textOf(page)).toContain('You have logged out.');
      await checkLayout();

      await submitPassword(page, person, { channel });
      expect(pathOf(page)).toBe('/verify');
      expect(await textOf(page)).toContain(
        `We sent a 6-digit login code by ${channel === 'sms' ? 'text message' : 'voice call'} to •••• ${last4}.`,
      );
      await checkLayout();
      const login = await outbox.nextCode('login');
      expect(login.channel).toBe(channel === 'sms' ? 'Text message' : 'Voice call');
      if (channel === 'voice') expect(login.text).toMatch(/^Your Keyhole code is \d( \d){5}$/);

      // A wrong code: the summary at the top says so and links to the field, which says it too.
      await enterCode(page, wrongCodeFor(login.code));
      const summary = page.getByRole('alert').filter({ hasText: 'There is a problem' });
      await expect(summary.textContent()).resolves.toContain('That code is not right. 4 attempts left.');
      await expect(summary.getByRole('link').getAttribute('href')).resolves.toBe('#code');
      await expect(page.getByLabel('Code', { exact: true }).getAttribute('aria-invalid')).resolves.toBe(
        'true',
      );

      await enterCode(page, login.code);
      // An account without recovery codes is offered them once after a login; this one skips.
      expect(pathOf(page)).toBe('/account/recovery-codes/offer');
      await checkLayout();
      await Promise.all([
        page.waitForURL(/\/account$/),
        page.getByRole('button', { name: 'Skip for now' }).click(),
      ]);
      expect(await textOf(page, 'header')).toContain(`Signed in as ${person.username}`);
      // The first sign-in was the one that proved the number, at registration.
      expect(await textOf(page)).toMatch(/Previous login \w{3}, \d+ \w{3} \d{4}/);
      // As in the README's try-it steps: the page gives the operator's command, which makes the
      // account an admin; a reload then leads to the secure area.
      expect(await textOf(page)).toContain(`npm run admin -- grant ${person.username}`);
      await checkLayout();
      await running.site.grantAdmin(person.username);
      await page.reload();

      // The secure area asks for a code of its own, and the login code is refused there.
      await page.getByRole('link', { name: 'Go to the secure area' }).click();
      expect(await textOf(page)).toContain('The secure area needs a fresh code');
      await page.getByRole('button', { name: 'Send code' }).click();
      await page.waitForURL(/\/verify$/);
      expect(await textOf(page)).toContain('Your login code does not work here.');
      const admin = await outbox.nextCode('admin');
      await enterCode(page, login.code);
      await expect(textOf(page)).resolves.toContain('That code is not right.');
      await enterCode(page, admin.code);
      expect(pathOf(page)).toBe('/admin');
      expect(await textOf(page)).toMatch(/Secure area Verified until/);
      expect(await textOf(page)).toContain('admin verified');
      // The secure area's tables (sending per country, accounts) are stacked cards on a phone.
      const stackedCells = await checkLayout();
      if (viewport === PHONE) expect(stackedCells, 'labelled cells on /admin').toBeGreaterThan(0);

      await page.getByRole('button', { name: 'Log out' }).first().click();
      await page.waitForURL(/\/login\?signedOut/);
      expect(await textOf(page)).toContain('You have logged out.');
      await page.goto('/account');
      expect(pathOf(page)).toBe('/login?next=%2Faccount');

      expect(wider).toEqual([]);
      expect(tooTall).toEqual([]);
      expect(elsewhere).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    },
    60_000,
  );
});
