import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DESKTOP,
  launchBrowser,
  newContext,
  openOutbox,
  skipBrowserTests,
  startSite,
  type RunningSite,
} from './browser.js';
import { PASSWORD, newPerson, pathOf, register, textOf, wrongCodeFor } from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 60_000 });

/** What has focus, as a person using a screen reader or a keyboard would know it. */
async function focused(
  page: Page,
): Promise<{ id: string; name: string; tag: string; type: string; outline: string }> {
  return (await page.evaluate(`(() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {
      id: el.id,
      tag: el.tagName.toLowerCase(),
      type: el.getAttribute('type') || '',
      name: (el.getAttribute('aria-label') || el.textContent || el.value || '').trim().replace(/\\s+/g, ' '),
      outline: style.outlineStyle + ' ' + style.outlineWidth,
    };
  })()`)) as { id: string; name: string; tag: string; type: string; outline: string };
}

/** Presses Tab until `matches` says focus has arrived; fails if it never does. */
async function tabTo(page: Page, matches: (el: Awaited<ReturnType<typeof focused>>) => boolean, limit = 15) {
  for (let presses = 0; presses < limit; presses += 1) {
    await page.keyboard.press('Tab');
    const now = await focused(page);
    if (matches(now)) {
      // Wherever focus lands, a person can see it.
      expect(now.outline, `no visible focus on ${now.tag}#${now.id}`).not.toMatch(/^none|\s0px$/);
      return now;
    }
  }
  throw new Error('Tab never reached the expected element');
}

describe.skipIf(skipBrowserTests)('with the keyboard alone', () => {
  let browser: Browser;
  let running: RunningSite;

  beforeAll(async () => {
    browser = await launchBrowser();
    running = await startSite();
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  it('logs in and enters a code with Tab, Space and Enter, and no mouse', async () => {
    const context = await newContext(browser, running.baseUrl, DESKTOP);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const person = newPerson({ channel: 'sms' });
    await register(page, person, outbox);

    // On a page that focuses no field, the first Tab reaches the skip link, past the header.
    await page.goto('/register');
    const skip = await tabTo(page, (el) => el.tag === 'a');
    expect(skip.name).toBe('Skip to content');
    await expect(page.getByRole('link', { name: 'Skip to content' }).isVisible()).resolves.toBe(true);

    // The login form's first field has the focus as soon as the page opens.
    await page.goto('/login');
    expect((await focused(page)).id).toBe('username');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(person.username);
    await tabTo(page, (el) => el.id === 'password');
    await page.keyboard.type(PASSWORD);
    // A radio group is one Tab stop; the arrow keys move within it and Space picks.
    await tabTo(page, (el) => el.type === 'radio');
    await page.keyboard.press('Space');
    await expect(page.getByLabel('Text message', { exact: true }).isChecked()).resolves.toBe(true);
    await tabTo(page, (el) => el.tag === 'button' && el.name === 'Continue');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(pathOf(page)).toBe('/verify');

    // The code field has focus as soon as the page opens.
    expect((await focused(page)).id).toBe('code');
    const login = await outbox.nextCode('login');
    await page.keyboard.type(wrongCodeFor(login.code));
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

    // After a mistake, focus is on the error summary; its link leads back to the field.
    const summary = await focused(page);
    expect(summary.name).toContain('There is a problem');
    await tabTo(page, (el) => el.tag === 'a' && el.name.includes('That code is not right'), 1);
    await page.keyboard.press('Enter');
    expect((await focused(page)).id).toBe('code');
    await page.keyboard.type(login.code);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(pathOf(page)).toBe('/account');

    // And out again, from the header.
    await tabTo(page, (el) => el.tag === 'button' && el.name === 'Log out');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(await textOf(page)).toContain('You have logged out.');
    await context.close();
  });
});
