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
  type OutboxTab,
  type RunningSite,
} from './browser.js';
import { enterCode, newPerson, pathOf, register, submitPassword, textOf, type Person } from './pages.js';
import { addVirtualAuthenticator } from './virtual-authenticator.js';

// A real browser on a shared two-core machine, axe in two colour schemes on each state.
vi.setConfig({ testTimeout: 120_000 });

/**
 * Passkeys in a real browser (issue 12): Chromium with a virtual authenticator, the site on
 * http://localhost:<port> with PUBLIC_URL the same (a passkey is bound to its site's host name).
 */
describe.skipIf(skipBrowserTests)('passkeys in a browser', () => {
  let browser: Browser;
  let running: RunningSite | undefined;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
    await running?.close();
    running = undefined;
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function signedInPerson(): Promise<{ page: Page; outbox: OutboxTab; person: Person }> {
    running = await startSite({}, { origin: 'localhost' });
    context = await newContext(browser, running.baseUrl, DESKTOP);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);
    await enterCode(page, (await outbox.nextCode('login')).code);
    return { page, outbox, person };
  }

  it('adds a passkey after a settings code, lists it, and says so when this device already holds one', async () => {
    const { page, outbox } = await signedInPerson();
    const authenticator = await addVirtualAuthenticator(context!, page);
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };

    await page.goto('/account/security');
    expect(await textOf(page, '#passkeys-title + p')).toContain('A passkey confirms it is you');
    expect(await textOf(page)).toContain('You have no passkeys yet.');
    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Add a passkey' }).click(),
    ]);
    await enterCode(page, (await outbox.nextCode('settings')).code);
    expect(pathOf(page)).toBe('/account/security/passkeys/new');
    await check('add a passkey');

    await page.getByLabel('Name for this passkey').fill('This laptop');
    await Promise.all([
      page.waitForURL(/\/account\/security$/),
      page.getByRole('button', { name: 'Create the passkey' }).click(),
    ]);
    const after = await textOf(page);
    expect(after).toContain('Your passkey “This laptop” was added.');
    expect(await textOf(page, '[data-passkey-row]')).toMatch(
      /^This laptop \d+ \w+ \d{4}, \d\d:\d\d \S+ Never$/,
    );
    expect(after).toContain('Authenticator app or passkey added (passkey)');
    expect(await authenticator.credentials()).toHaveLength(1);
    await check('security settings with a passkey');

    // The same device again: the browser refuses it (the site excluded it), and the page says why.
    await page.getByRole('link', { name: 'Add a passkey' }).click();
    await page.waitForURL(/\/account\/security\/passkeys\/new$/);
    await page.getByRole('button', { name: 'Create the passkey' }).click();
    const error = page.locator('[data-passkey-error]');
    await error.waitFor({ state: 'visible' });
    expect(await error.getAttribute('role')).toBe('alert');
    expect(await error.innerText()).toContain('This device already holds a passkey for your account.');
    expect(pathOf(page)).toBe('/account/security/passkeys/new');
    expect(await page.getByRole('button', { name: 'Create the passkey' }).isVisible()).toBe(true);
    await check('add a passkey, refused by the device');
    expect(await authenticator.credentials()).toHaveLength(1);

    expect(found).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('says so, and hides the button, in a browser without passkeys', async () => {
    const { page, outbox } = await signedInPerson();
    // A browser from before WebAuthn: run in the page before its own scripts.
    await page.addInitScript('delete window.PublicKeyCredential;');
    await page.goto('/account/security');
    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Add a passkey' }).click(),
    ]);
    await enterCode(page, (await outbox.nextCode('settings')).code);
    const error = page.locator('[data-passkey-error]');
    await error.waitFor({ state: 'visible' });
    expect(await error.innerText()).toBe('This browser cannot make passkeys. Try another browser or device.');
    expect(await page.getByRole('button', { name: 'Create the passkey' }).isVisible()).toBe(false);
    expect(await findViolations(page)).toEqual([]);
  });
});
