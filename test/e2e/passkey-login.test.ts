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
import { enterCode, logOut, newPerson, pathOf, register, submitPassword, textOf } from './pages.js';
import { addVirtualAuthenticator } from './virtual-authenticator.js';

// A real browser on a shared two-core machine: five logins (argon2 each) and axe in two colour schemes.
vi.setConfig({ testTimeout: 180_000 });

/** The settings code, then the add-a-passkey page, answered by the page's virtual authenticator. */
async function addPasskey(page: Page, outbox: OutboxTab, label: string): Promise<void> {
  await page.goto('/account/security');
  await Promise.all([
    page.waitForURL(/\/verify$/),
    page.getByRole('button', { name: 'Add a passkey' }).click(),
  ]);
  await enterCode(page, (await outbox.nextCode('settings')).code);
  await page.getByLabel('Name for this passkey').fill(label);
  await Promise.all([
    page.waitForURL(/\/account\/security$/),
    page.getByRole('button', { name: 'Create the passkey' }).click(),
  ]);
  expect(await textOf(page)).toContain(`Your passkey “${label}” was added.`);
}

/** The code page's passkey form, answered by the device; the page the site then leads to. */
async function usePasskey(page: Page, leadsTo: RegExp): Promise<void> {
  await Promise.all([
    page.waitForURL(leadsTo),
    page.locator('form[data-passkey="authenticate"]').getByRole('button', { name: 'Use a passkey' }).click(),
  ]);
}

/** What the code page's passkey form asks the browser for. */
async function passkeyRequestOn(page: Page): Promise<{ userVerification?: string }> {
  return JSON.parse(
    (await page.locator('form[data-passkey="authenticate"] script[data-passkey-options]').textContent()) ??
      '',
  ) as { userVerification?: string };
}

function tryAnotherWay(page: Page) {
  return page.getByRole('region', { name: 'Try another way' });
}

/**
 * Passkeys as a second factor in a real browser (issue 12): Chromium with the DevTools protocol's
 * virtual authenticator, the site on http://localhost:<port> with PUBLIC_URL the same. A passkey
 * finishes the login (by "Try another way", and as the default factor, which sends no code at
 * all) and opens the secure area, which takes it only when the device checked its user; once
 * removed, the login is back to a code by phone.
 */
describe.skipIf(skipBrowserTests)('logging in with a passkey in a browser', () => {
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

  async function openSite() {
    running = await startSite({}, { origin: 'localhost' });
    context = await newContext(browser, running.baseUrl, DESKTOP);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const found: string[] = [];
    const check = async (name: string) => {
      for (const violation of await findViolations(page)) found.push(`${name}: ${violation}`);
    };
    return { site: running.site, context, outbox, page, problems, found, check };
  }

  it('logs in with a passkey by "Try another way" and as the default (no code sent), opens the secure area with it, and after its removal logs in by a phone code', async () => {
    const { site, context, outbox, page, problems, found, check } = await openSite();
    const laptop = await addVirtualAuthenticator(context, page);
    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);
    await enterCode(page, (await outbox.nextCode('login')).code);
    await addPasskey(page, outbox, 'This laptop');
    expect(await laptop.credentials()).toHaveLength(1);

    // The phone is still the default: a code goes out, and "Try another way" offers the passkey instead.
    await logOut(page);
    await submitPassword(page, person);
    await outbox.nextCode('login');
    expect(await textOf(page)).toContain('We sent a 6-digit login code by text message');
    await Promise.all([
      page.waitForURL(/\/verify$/),
      tryAnotherWay(page).getByRole('button', { name: 'Use a passkey' }).click(),
    ]);
    expect(await textOf(page)).toContain('Use a passkey you saved for this account');
    expect((await passkeyRequestOn(page)).userVerification).toBe('preferred');
    await check('login code page, passkey chosen');
    await usePasskey(page, /\/account$/);
    expect(await textOf(page, 'header')).toContain(`Signed in as ${person.username}`);
    await page.goto('/account/security');
    expect(await textOf(page, '[data-passkey-row]')).not.toMatch(/Never$/);

    // The passkey as the default: the password leads straight to it, and no code is sent at all.
    await page.getByRole('radio', { name: 'Passkey' }).check();
    await Promise.all([
      page.waitForURL(/\/account\/security$/),
      page.getByRole('button', { name: 'Save', exact: true }).click(),
    ]);
    expect(await textOf(page)).toContain('From now on you are asked for a passkey first.');
    await logOut(page);
    const sentBefore = { messages: site.outbox.list().length, printed: site.printed.length };
    await submitPassword(page, person);
    expect(pathOf(page)).toBe('/verify');
    expect(await textOf(page)).not.toContain('We sent');
    expect(await page.getByLabel('Code', { exact: true }).count()).toBe(0);
    expect(await textOf(page, '.other-ways')).toContain('Text a code to my phone');
    await check('login code page, passkey as the default');
    await usePasskey(page, /\/account$/);
    expect(await textOf(page, 'header')).toContain(`Signed in as ${person.username}`);
    expect(site.outbox.list()).toHaveLength(sentBefore.messages);
    expect(site.printed).toHaveLength(sentBefore.printed);

    // The secure area: the same passkey, asked to verify its user this time.
    await site.grantAdmin(person.username);
    await page.goto('/admin');
    expect(await textOf(page)).toContain('You will confirm with a passkey.');
    await check('secure area, before its step-up');
    await Promise.all([page.waitForURL(/\/verify$/), page.getByRole('button', { name: 'Continue' }).click()]);
    expect(await textOf(page)).toContain('The secure area needs a confirmation of its own.');
    expect((await passkeyRequestOn(page)).userVerification).toBe('required');
    await check('secure area step-up, passkey');
    await usePasskey(page, /\/admin$/);
    expect(await textOf(page)).toMatch(/Secure area Verified until/);
    expect(site.outbox.list()).toHaveLength(sentBefore.messages);

    // Removed (a settings confirmation first: by the passkey, the default), it is no longer offered.
    await page.goto('/account/security');
    expect(await textOf(page)).toContain('You will confirm with your passkey');
    await Promise.all([
      page.waitForURL(/\/verify$/),
      page.getByRole('button', { name: 'Confirm it is you' }).click(),
    ]);
    await usePasskey(page, /\/account\/security$/);
    await Promise.all([
      page.waitForURL(/\/account\/security$/),
      page.getByRole('button', { name: 'Remove passkey This laptop' }).click(),
    ]);
    expect(await textOf(page)).toContain('Passkey “This laptop” was removed.');
    expect(await textOf(page)).toContain('You have no passkeys yet.');
    await logOut(page);
    // Some minutes later (the test clock moves only when told): the code of the first login above,
    // never entered, has run out, so this login gets a code of its own.
    site.clock.advanceMinutes(15);
    await submitPassword(page, person);
    expect(pathOf(page)).toBe('/verify');
    expect(await textOf(page)).toContain('We sent a 6-digit login code by text message');
    expect(await page.locator('form[data-passkey]').count()).toBe(0);
    expect(await tryAnotherWay(page).getByRole('button', { name: 'Use a passkey' }).count()).toBe(0);
    await enterCode(page, (await outbox.nextCode('login')).code);
    expect(pathOf(page)).toBe('/account');

    expect(found).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('takes a passkey that does not verify its user for the login, but not for the secure area, and says why', async () => {
    const { site, context, outbox, page, problems, found, check } = await openSite();
    // A device that only checks someone is there, as a security key without a PIN.
    const key = await addVirtualAuthenticator(context, page, { userVerification: false });
    const person = newPerson();
    await register(page, person, outbox);
    await site.grantAdmin(person.username);
    await submitPassword(page, person);
    await enterCode(page, (await outbox.nextCode('login')).code);
    await addPasskey(page, outbox, 'Blue key');
    expect(await key.credentials()).toHaveLength(1);

    await logOut(page);
    await submitPassword(page, person);
    await outbox.nextCode('login');
    await Promise.all([
      page.waitForURL(/\/verify$/),
      tryAnotherWay(page).getByRole('button', { name: 'Use a passkey' }).click(),
    ]);
    await usePasskey(page, /\/account$/);
    expect(await textOf(page, 'header')).toContain(`Signed in as ${person.username}`);

    // The secure area requires user verification: the browser itself refuses this device, and the
    // page says what the step needs.
    await page.goto('/admin');
    await Promise.all([page.waitForURL(/\/verify$/), page.getByRole('button', { name: 'Continue' }).click()]);
    expect(await textOf(page)).toContain('a PIN, fingerprint or face');
    await page
      .locator('form[data-passkey="authenticate"]')
      .getByRole('button', { name: 'Use a passkey' })
      .click();
    const error = page.locator('[data-passkey-error]');
    await error.waitFor({ state: 'visible' });
    expect(await error.innerText()).toContain('This step needs a passkey that checks it is you');
    expect(pathOf(page)).toBe('/verify');
    await check('secure area step-up, passkey refused by the browser');

    // A browser that ignores the requirement (the request rewritten on its way in): the site checks
    // the answer's own flag, and refuses it in words.
    await page.route('**/verify', async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const response = await route.fetch();
      const body = (await response.text()).replace(
        '"userVerification":"required"',
        '"userVerification":"preferred"',
      );
      await route.fulfill({ response, body });
    });
    await page.goto('/verify');
    expect((await passkeyRequestOn(page)).userVerification).toBe('preferred');
    await Promise.all([
      page.waitForNavigation(),
      page
        .locator('form[data-passkey="authenticate"]')
        .getByRole('button', { name: 'Use a passkey' })
        .click(),
    ]);
    expect(pathOf(page)).toBe('/verify');
    expect(await textOf(page, '.error-summary')).toContain(
      'This step needs your passkey to check it is you (a PIN, fingerprint or face).',
    );
    await page.unroute('**/verify');
    await page.goto('/admin');
    expect(await textOf(page)).toContain('You will confirm with a passkey.');

    expect(found).toEqual([]);
    expect(problems).toEqual([]);
  });
});
