import type { Page } from 'playwright-core';
import type { Channel } from '../../src/mfa/provider.js';

/** What a person does on each form, found by its visible label, as they would find it. */

export const PASSWORD = 'correct horse battery staple';

let nextNumber = 100;

/** A fresh fictional number (+1 202 555 0100 to 0199), written as a person would type it. */
export function fictionalPhone(): string {
  return `+1 202 555 ${String(100 + (nextNumber++ % 100)).padStart(4, '0')}`;
}

export interface Person {
  username: string;
  phone: string;
  channel: Channel;
}

export function newPerson(overrides: Partial<Person> = {}): Person {
  return {
    username: overrides.username ?? `user${Math.random().toString(36).slice(2, 8)}`,
    phone: overrides.phone ?? fictionalPhone(),
    channel: overrides.channel ?? 'sms',
  };
}

const CHANNEL_LABELS: Record<Channel, string> = { sms: 'Text message', voice: 'Voice call' };

/** The registration form, filled and sent; leaves the page on the sign-up code page. */
export async function submitRegistration(page: Page, person: Person): Promise<void> {
  await page.goto('/register');
  await page.getByLabel('Username', { exact: true }).fill(person.username);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Phone number', { exact: true }).fill(person.phone);
  await page.getByLabel(CHANNEL_LABELS[person.channel], { exact: true }).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/verify$/);
}

/**
 * Signs up as a person does: the form, then the sign-up code that proves the number (read from
 * the outbox tab), which signs them in; then logs out, so the journey goes on from the login page.
 */
export async function register(
  page: Page,
  person: Person,
  outbox: { nextCode(kind: 'sign-up'): Promise<{ code: string }> },
  options: { keepRecoveryCodesOffer?: boolean } = {},
): Promise<void> {
  await submitRegistration(page, person);
  await enterCode(page, (await outbox.nextCode('sign-up')).code);
  await page.waitForURL(/\/account$/);
  // The recovery codes offer skipped at once, as most journeys are not about it: their logins land on /account.
  if (!options.keepRecoveryCodesOffer) {
    await page.goto('/account/recovery-codes/offer');
    await Promise.all([
      page.waitForURL(/\/account$/),
      page.getByRole('button', { name: 'Skip for now' }).click(),
    ]);
  }
  await logOut(page);
}

/** The header's "Log out"; leaves the page on the login page that says so. */
export async function logOut(page: Page): Promise<void> {
  await Promise.all([
    page.waitForURL(/\/login\?signedOut$/),
    page.getByRole('button', { name: 'Log out' }).first().click(),
  ]);
}

/** The password step; leaves the page on the code form. */
export async function submitPassword(
  page: Page,
  person: Pick<Person, 'username'>,
  options: { channel?: Channel; password?: string } = {},
): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Username', { exact: true }).fill(person.username);
  await page.getByLabel('Password', { exact: true }).fill(options.password ?? PASSWORD);
  if (options.channel) await page.getByLabel(CHANNEL_LABELS[options.channel], { exact: true }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForLoadState();
}

export async function enterCode(page: Page, code: string): Promise<void> {
  await page.getByLabel('Code', { exact: true }).fill(code);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Verify' }).click()]);
}

/** A code that is certainly not `code`. */
export function wrongCodeFor(code: string): string {
  return code === '000000' ? '111111' : '000000';
}

export function pathOf(page: Page): string {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

/** The page text a person reads, with runs of white space made single. */
export async function textOf(page: Page, selector = 'main'): Promise<string> {
  return ((await page.locator(selector).innerText()) ?? '').replace(/\s+/g, ' ').trim();
}
