import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProviderError, type MfaProvider } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
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
import {
  enterCode,
  newPerson,
  pathOf,
  register,
  submitPassword,
  submitRegistration,
  textOf,
  wrongCodeFor,
} from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 60_000 });

const RESEND_COOLDOWN_MS = 30_000;

/** Form controls a person can see, and whether each has a visible label and which autocomplete hint. */
async function describeControls(page: Page) {
  return (await page.evaluate(`[...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')].map((el) => ({
    id: el.id,
    type: el.getAttribute('type') || el.tagName.toLowerCase(),
    autocomplete: el.getAttribute('autocomplete'),
    labelled: [...el.labels].some((label) => label.getBoundingClientRect().width > 0 && label.textContent.trim() !== ''),
  }))`)) as { id: string; type: string; autocomplete: string | null; labelled: boolean }[];
}

/**
 * Zero violations of WCAG 2.1 A and AA on every page and state, in light and dark mode. Each test
 * walks to its pages and collects what axe finds, so one failure lists every page at once.
 */
describe.skipIf(skipBrowserTests)('accessibility (axe-core, WCAG 2.1 A and AA, light and dark)', () => {
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

  async function open(options: Parameters<typeof startSite>[0] = {}) {
    running = await startSite(options);
    context = await newContext(browser, running.baseUrl, DESKTOP);
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const found: string[] = [];
    const check = async (name: string, target: Page = page) => {
      for (const violation of await findViolations(target)) found.push(`${name}: ${violation}`);
    };
    return { page, outbox, found, check };
  }

  it('passes on the API reference (/api/docs), a long page of tables and code', async () => {
    const { page, found, check } = await open();
    await page.goto('/api/docs');
    expect(await page.locator('h1').textContent()).toBe('Keyhole verification API');
    await check('API reference');
    expect(found).toEqual([]);
    // axe checks the contrast of every piece of text, twice: on this long page that takes a while.
  }, 150_000);

  it('passes on the register, login, 404 and outbox pages, fresh and with errors', async () => {
    const { page, outbox, found, check } = await open();
    await check('outbox (empty)', outbox.page);

    await page.goto('/register');
    await check('register');
    expect(await describeControls(page)).toEqual([
      { id: 'username', type: 'text', autocomplete: 'username', labelled: true },
      { id: 'password', type: 'password', autocomplete: 'new-password', labelled: true },
      { id: 'country', type: 'select', autocomplete: 'country', labelled: true },
      { id: 'phone', type: 'tel', autocomplete: 'tel', labelled: true },
      { id: 'email', type: 'email', autocomplete: 'email', labelled: true },
      // The first radio carries the group's id, so an error link about the channel lands on it.
      { id: 'channel', type: 'radio', autocomplete: null, labelled: true },
      { id: '', type: 'radio', autocomplete: null, labelled: true },
    ]);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForSelector('.error-summary');
    await check('register with errors');

    const person = newPerson();
    await register(page, person, outbox);
    await check('login, just registered');
    expect(await describeControls(page)).toEqual([
      { id: 'username', type: 'text', autocomplete: 'username', labelled: true },
      { id: 'password', type: 'password', autocomplete: 'current-password', labelled: true },
      // The first radio carries the group's id, so an error link about the channel lands on it.
      { id: 'channel', type: 'radio', autocomplete: null, labelled: true },
      { id: '', type: 'radio', autocomplete: null, labelled: true },
    ]);
    await submitPassword(page, person, { password: 'not the password' });
    await check('login with an error');

    await page.goto('/no-such-page');
    expect(await textOf(page)).toContain('Page not found');
    await check('404');

    await submitPassword(page, person);
    await check('outbox (with a code)', await outbox.page.reload().then(() => outbox.page));
    expect(found).toEqual([]);
  });

  it('passes on the code page, the account and the secure area, for a login and for the step-up', async () => {
    const { page, outbox, found, check } = await open();
    const person = newPerson({ username: 'ada' });
    await register(page, person, outbox);
    // Made an admin only after this login: an admin is never offered "Remember this browser".
    await submitPassword(page, person);
    expect(pathOf(page)).toBe('/verify');
    await check('code entry');
    expect(await describeControls(page)).toEqual([
      { id: 'code', type: 'text', autocomplete: 'one-time-code', labelled: true },
      // "Remember this browser for 30 days" (issue 12), labelled by the label around it.
      { id: '', type: 'checkbox', autocomplete: null, labelled: true },
    ]);
    const login = await outbox.nextCode('login');
    await enterCode(page, wrongCodeFor(login.code));
    await check('code entry with an error');
    await enterCode(page, login.code);
    await check('account');

    await running!.site.grantAdmin('ada');
    await page.goto('/admin');
    await check('secure area: step-up');
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.waitForURL(/\/verify$/);
    await check('secure area: code entry');
    await enterCode(page, (await outbox.nextCode('admin')).code);
    expect(pathOf(page)).toBe('/admin');
    await check('secure area');
    await page.goto('/account');
    await check('account, verified for the secure area');
    expect(found).toEqual([]);
  });

  it('passes on the sign-up code page, with the number correction open and with its errors', async () => {
    const { page, outbox, found, check } = await open();
    await submitRegistration(page, newPerson());
    expect(await textOf(page)).toContain('Confirm your phone number');
    await check('sign-up code');
    await page.getByText('Wrong number? Change it').click();
    await check('sign-up code, number correction open');
    await page.getByLabel('Phone number', { exact: true }).fill('12');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Send a code to this number' }).click(),
    ]);
    expect(await textOf(page)).toContain('Enter a valid phone number');
    await check('sign-up code, number correction with an error');
    await enterCode(page, (await outbox.nextCode('sign-up')).code);
    expect(pathOf(page)).toBe('/account');
    expect(found).toEqual([]);
  });

  it('passes on the code page after a lockout, and on the 429 page that follows', async () => {
    const { page, outbox, found, check } = await open();
    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);

    // Ten wrong codes in all (five for each of two codes) lock the account's codes for a while.
    for (let round = 0; round < 2; round += 1) {
      const code = await outbox.nextCode('login');
      for (let attempt = 0; attempt < 5; attempt += 1) await enterCode(page, wrongCodeFor(code.code));
      if (round === 0) {
        await check('code entry, code used up');
        running!.site.clock.advance(RESEND_COOLDOWN_MS);
        await page.goto('/verify');
        await Promise.all([
          page.waitForNavigation(),
          page.getByRole('button', { name: 'Send a new code' }).click(),
        ]);
      }
    }
    expect(await textOf(page)).toContain('Too many wrong codes. For your safety, wait 15 minutes');
    await check('code entry after lockout');

    await submitPassword(page, person);
    expect(await textOf(page)).toContain('Slow down');
    await check('429');
    expect(found).toEqual([]);
  });

  it('passes on the account page and the 403 page a signed-in person who is not an admin sees', async () => {
    const { page, outbox, found, check } = await open();
    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);
    await enterCode(page, (await outbox.nextCode('login')).code);
    expect(await textOf(page)).toContain(`npm run admin -- grant ${person.username}`);
    await check('account, not an admin (with the command that makes one)');
    const response = await page.goto('/admin');
    expect(response?.status()).toBe(403);
    expect(await textOf(page)).toContain('The secure area is for administrators only.');
    await check('403');
    expect(found).toEqual([]);
  });

  it('passes on the 500 page shown when something unexpected fails', async () => {
    const { page, outbox, found, check } = await open({
      hasher: {
        hash: async () => 'not a real hash',
        verify: async () => {
          throw new Error('unexpected failure for the test');
        },
      },
    });
    const person = newPerson();
    await register(page, person, outbox);
    await submitPassword(page, person);
    expect(await textOf(page)).toContain('Something went wrong on our side.');
    await check('500');
    expect(found).toEqual([]);
  });

  it('passes on the 503 page shown when no provider can send a code', async () => {
    const unreachable: MfaProvider = {
      name: 'unreachable',
      channels: ['sms', 'voice'],
      send: async () => {
        throw new ProviderError('unavailable', 'unreachable', 'connection refused');
      },
      verify: async () => 'invalid',
    };
    const { page, found, check } = await open({ providers: createProviderPool([unreachable]) });
    // Signed up, the sign-up code could not go out (the code page says so); asking again is the 503.
    await submitRegistration(page, newPerson());
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Send code' }).click()]);
    expect(await textOf(page)).toContain('The service that sends codes did not answer.');
    await check('503');
    expect(found).toEqual([]);
  });
});
