/**
 * `npm run screenshots`: walks the site in the same headless Chromium as the browser tests and
 * writes a PNG of each main page to docs/screenshots/: every page on a desktop, the everyday ones on
 * a phone, and two in dark mode. The app runs in this process on a loopback port with the console
 * provider and a test clock, so the pages show the same dates on every run.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  DESKTOP,
  PHONE,
  launchBrowser,
  newContext,
  openOutbox,
  startSite,
  type OutboxTab,
} from '../test/e2e/browser.js';
import { enterCode, newPerson, register, submitPassword, wrongCodeFor } from '../test/e2e/pages.js';

const OUT_DIR = join(import.meta.dirname, '..', 'docs', 'screenshots');

/** A desktop shot shows the whole page; a phone shot shows the screen, as a phone does. */
async function capture(page: Page, name: string, fullPage: boolean) {
  await page.evaluate('document.activeElement && document.activeElement.blur()');
  await page.screenshot({ path: join(OUT_DIR, `${name}.png`), fullPage });
  console.log(`docs/screenshots/${name}.png`);
}

type Device = 'desktop' | 'phone';

/**
 * One visitor's walk through the site: registers "ada" (whom the operator then makes an admin),
 * logs in with a wrong code first, enters the secure area, and captures each page on the way. The
 * clock moves a little between steps, as it would for a person, so the times on the pages differ.
 */
async function walk(browser: Browser, device: Device, colorScheme: 'light' | 'dark', only?: Set<string>) {
  const running = await startSite();
  const clock = running.site.clock;
  const context = await newContext(browser, running.baseUrl, {
    ...(device === 'desktop' ? DESKTOP : PHONE),
    colorScheme,
  });
  const suffix = colorScheme === 'dark' ? `${device}-dark` : device;
  const shoot = async (page: Page, name: string) => {
    if (!only || only.has(name)) await capture(page, `${name}-${suffix}`, true);
  };
  try {
    // Two earlier accounts, so the secure area has something to list.
    clock.set(new Date('2026-11-02T08:30:00Z'));
    await running.site.users.create({
      username: 'grace',
      passwordHash: 'x',
      phone: '+442079460958',
      preferredChannel: 'voice',
    });
    clock.set(new Date('2026-11-14T16:05:00Z'));
    await running.site.users.create({
      username: 'linus',
      passwordHash: 'x',
      phone: '+4930901820',
      preferredChannel: 'sms',
    });
    clock.set(new Date('2026-11-21T09:58:00Z'));

    const outbox: OutboxTab = await openOutbox(context);
    const page = await context.newPage();
    const ada = newPerson({ username: 'ada', phone: '+1 202 555 0147', channel: 'sms' });

    await page.goto('/register');
    await shoot(page, 'register');
    await register(page, ada, outbox);
    // As the operator's `npm run admin -- grant ada` does.
    await running.site.grantAdmin('ada');
    clock.advance(45_000);
    await page.goto('/login');
    await shoot(page, 'login');
    await submitPassword(page, ada);
    await shoot(page, 'code');
    const login = await outbox.nextCode('login');
    clock.advance(20_000);
    await enterCode(page, wrongCodeFor(login.code));
    await shoot(page, 'code-error');
    clock.advance(8_000);
    await enterCode(page, login.code);
    await shoot(page, 'account');
    clock.advance(60_000);
    await page.goto('/admin');
    await shoot(page, 'secure-area-step-up');
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.waitForURL(/\/verify$/);
    await shoot(page, 'secure-area-code');
    clock.advance(25_000);
    await enterCode(page, (await outbox.nextCode('admin')).code);
    await shoot(page, 'secure-area');
    await outbox.page.reload();
    await shoot(outbox.page, 'outbox');
    await page.goto('/no-such-page');
    await shoot(page, '404');
  } finally {
    await context.close();
    await running.close();
  }
}

async function main() {
  mkdirSync(OUT_DIR, { recursive: true });
  for (const file of readdirSync(OUT_DIR)) if (file.endsWith('.png')) rmSync(join(OUT_DIR, file));

  const browser = await launchBrowser();
  try {
    await walk(browser, 'desktop', 'light');
    await walk(browser, 'phone', 'light', new Set(['login', 'code-error', 'account', 'secure-area']));
    await walk(browser, 'desktop', 'dark', new Set(['login', 'account']));
  } finally {
    await browser.close();
  }
}

await main();
