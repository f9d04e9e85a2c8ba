import { accessSync, constants } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from 'playwright-core';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/create-test-app.js';

/**
 * The one place that finds and starts a browser, for the e2e tests and `npm run screenshots`.
 * These machines cannot download a browser, so we drive Debian's Chromium with playwright-core.
 */

export const CHROME_PATH = process.env.CHROME_PATH ?? '/usr/bin/chromium';

/** The machines have no internet: without these flags Chromium keeps trying to reach it. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** CI sets REQUIRE_BROWSER_TESTS=1: there a missing browser is a failure, never a skip. */
export const isBrowserRequired = process.env.REQUIRE_BROWSER_TESTS === '1' || process.env.CI === 'true';

const HOW_TO_ENABLE =
  'install it (apt-get install -y chromium) or set CHROME_PATH to a Chromium or Chrome binary';

export const SKIP_MESSAGE = `Browser tests skipped: no Chromium at ${CHROME_PATH}. To run them, ${HOW_TO_ENABLE}.`;

export const MISSING_BROWSER_MESSAGE = `Browser tests are required here (REQUIRE_BROWSER_TESTS=1 or CI=true) but there is no Chromium at ${CHROME_PATH}: ${HOW_TO_ENABLE}.`;

export function isBrowserInstalled(): boolean {
  try {
    accessSync(CHROME_PATH, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether this run skips the browser tests: only when no browser is found and none is required. */
export const skipBrowserTests = !isBrowserInstalled() && !isBrowserRequired;

export function launchBrowser(): Promise<Browser> {
  if (!isBrowserInstalled()) {
    throw new Error(MISSING_BROWSER_MESSAGE);
  }
  return chromium.launch({ executablePath: CHROME_PATH, headless: true, args: CHROMIUM_ARGS });
}

export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
export const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

export interface RunningSite {
  site: TestApp;
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * The real app, in this process, on a loopback port chosen by the system. With `origin:
 * 'localhost'`, the browser reaches it at http://localhost:<port> and PUBLIC_URL says the same:
 * what passkeys need (WebAuthn refuses an IP address as the site's id, and checks the origin
 * against PUBLIC_URL). The port is known only once the server listens, so the server listens
 * first and the app, built with that port, takes its requests from then on.
 */
export async function startSite(
  options: TestAppOptions = {},
  { origin = '127.0.0.1' }: { origin?: '127.0.0.1' | 'localhost' } = {},
): Promise<RunningSite> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${origin}:${port}`;
  let site: TestApp;
  try {
    site = await createTestApp(
      origin === 'localhost' ? { ...options, env: { ...options.env, PUBLIC_URL: baseUrl } } : options,
    );
  } catch (error) {
    server.close();
    throw error;
  }
  server.on('request', site.app);
  return {
    site,
    baseUrl,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await site.close();
    },
  };
}

export async function newContext(
  browser: Browser,
  baseUrl: string,
  options: BrowserContextOptions = DESKTOP,
): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL: baseUrl, ...options });
  context.setDefaultTimeout(10_000);
  return context;
}

/**
 * The development outbox in a tab of its own, as a person trying the site would keep it open.
 * `nextCode` waits for a message newer than the last one it read.
 */
export interface OutboxTab {
  page: Page;
  nextCode(
    scope: 'login' | 'admin' | 'sign-up' | 'reset' | 'settings',
  ): Promise<{ code: string; text: string; channel: string }>;
  /** The link in the newest email with this subject (waiting a little for it), as a path on this site. */
  linkInEmail(subject: string): Promise<string>;
}

export async function openOutbox(context: BrowserContext): Promise<OutboxTab> {
  const page = await context.newPage();
  let seen = 0;
  await page.goto('/dev/outbox');
  seen = await page.locator('[data-outbox-text]').count();
  return {
    page,
    async nextCode(scope) {
      for (let tries = 0; tries < 20; tries += 1) {
        await page.goto('/dev/outbox');
        const texts = await page.locator('[data-outbox-text]').allTextContents();
        if (texts.length > seen) {
          seen = texts.length;
          const newest = texts[0]!.trim();
          // An SMS ("Keyhole code: 123456", a blank line, "@localhost #123456") or a call ("Your Keyhole code is 1 2 3").
          const label = scope === 'login' ? 'Keyhole code' : `Keyhole ${scope} code`;
          const match = newest.match(
            new RegExp(`^(?:${label}: (\\d+)\\s+@\\S+ #\\d+|Your ${label} is ([\\d ]+))$`),
          );
          if (!match) throw new Error(`the newest outbox message is not a ${scope} code: ${newest}`);
          const channel = (await page.locator('.outbox__item').first().locator('.badge').textContent()) ?? '';
          return { code: (match[1] ?? match[2]!).replace(/ /g, ''), text: newest, channel: channel.trim() };
        }
        await page.waitForTimeout(100);
      }
      throw new Error(`no new ${scope} code arrived in the outbox`);
    },
    async linkInEmail(subject) {
      for (let tries = 0; tries < 20; tries += 1) {
        await page.goto('/dev/outbox');
        const email = page.locator('[data-outbox-email]').filter({
          has: page.locator('[data-outbox-email-subject]', { hasText: subject }),
        });
        if ((await email.count()) > 0) {
          const href = await email.first().locator('[data-outbox-email-text] a').first().getAttribute('href');
          // Built on PUBLIC_URL, which is not this test server's port: the path is what counts.
          const url = new URL(href ?? '');
          return url.pathname + url.search;
        }
        await page.waitForTimeout(100);
      }
      throw new Error(`no email "${subject}" arrived in the outbox`);
    },
  };
}
