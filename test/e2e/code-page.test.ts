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
import { enterCode, newPerson, pathOf, register, submitPassword, textOf, wrongCodeFor } from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 60_000 });

const RESEND_COOLDOWN_MS = 30_000;

describe.skipIf(skipBrowserTests)('the code page in a browser', () => {
  let browser: Browser;
  let running: RunningSite;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await running?.close();
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** A registered person whose password step is done, on the code page, with the outbox open beside it. */
  async function onTheCodePage(options: { javaScript?: boolean; phone?: boolean } = {}) {
    running = await startSite();
    const context = await newContext(browser, running.baseUrl, {
      ...(options.phone ? PHONE : DESKTOP),
      javaScriptEnabled: options.javaScript ?? true,
    });
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const person = newPerson({ channel: 'sms' });
    await register(page, person, outbox);
    if (options.javaScript !== false) await page.clock.install();
    await submitPassword(page, person);
    expect(pathOf(page)).toBe('/verify');
    return { context, outbox, page, person };
  }

  it('counts down on the resend button, then sends a new code once the cooldown is over', async () => {
    const { outbox, page } = await onTheCodePage();
    const first = await outbox.nextCode('login');
    const resend = page.getByRole('button', { name: 'Send a new code' });

    // The page's clock runs at real speed until told otherwise: a busy machine may take a second
    // between the page and the first look at it.
    expect(await textOf(page)).toMatch(/You can ask for a new code in (29|30) seconds\./);
    await expect(resend.getAttribute('aria-disabled')).resolves.toBe('true');
    await page.clock.runFor(10_000);
    expect(await textOf(page)).toMatch(/You can ask for a new code in (1[89]|20) seconds\./);

    // Early clicks do nothing while the countdown runs: not even a request leaves the page (the
    // server would refuse it anyway, but that is not what this checks).
    let earlyPosts = 0;
    const countResends = (request: { method(): string; url(): string }) => {
      if (request.method() === 'POST' && request.url().endsWith('/verify/resend')) earlyPosts += 1;
    };
    page.on('request', countResends);
    await resend.click({ force: true });
    await page.waitForTimeout(300);
    page.off('request', countResends);
    expect(earlyPosts).toBe(0);
    expect(await textOf(page)).not.toContain('A code was sent a moment ago');

    await page.clock.runFor(20_000);
    running.site.clock.advance(RESEND_COOLDOWN_MS);
    expect(await textOf(page)).toContain('You can ask for a new code now.');
    await expect(resend.getAttribute('aria-disabled')).resolves.toBeNull();
    await Promise.all([page.waitForNavigation(), resend.click()]);
    expect(await textOf(page)).toContain(
      'A new code is on its way by text message. Earlier codes no longer work.',
    );
    const second = await outbox.nextCode('login');

    // The first code was voided by the second.
    if (second.code !== first.code) {
      await enterCode(page, first.code);
      expect(await textOf(page)).toContain('That code is not right.');
    }
    await enterCode(page, second.code);
    expect(pathOf(page)).toBe('/account');
  });

  it('switches from a text message to a voice call, and takes the spoken code pasted with its spaces', async () => {
    const { context, outbox, page } = await onTheCodePage({ phone: true });
    await outbox.nextCode('login');
    running.site.clock.advance(RESEND_COOLDOWN_MS);
    await page.clock.runFor(RESEND_COOLDOWN_MS);

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Call me instead' }).click(),
    ]);
    expect(await textOf(page)).toContain('A new code is on its way by voice call.');
    expect(await textOf(page)).toContain('We sent a 6-digit login code by voice call');
    await expect(page.getByRole('button', { name: 'Send by text message instead' }).count()).resolves.toBe(1);
    const voice = await outbox.nextCode('login');
    expect(voice.channel).toBe('Voice call');
    expect(voice.text).toMatch(/is \d \d \d \d \d \d$/);

    // Pasted as the call reads it, "1 2 3 4 5 6": the field is numeric and the server ignores the spaces.
    const field = page.getByLabel('Code', { exact: true });
    await expect(field.getAttribute('inputmode')).resolves.toBe('numeric');
    await expect(field.getAttribute('autocomplete')).resolves.toBe('one-time-code');
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    const spoken = voice.text.replace(/^.* is /, '');
    await page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(spoken)})`);
    await field.focus();
    await page.keyboard.press('ControlOrMeta+V');
    await expect(field.inputValue()).resolves.toBe(spoken);
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Verify' }).click()]);
    expect(pathOf(page)).toBe('/account');
    expect(await textOf(page)).toContain('Codes sent by voice call');
  });

  it('works without JavaScript: an early resend is refused by the server, a later one is sent', async () => {
    const { outbox, page } = await onTheCodePage({ javaScript: false });
    await outbox.nextCode('login');

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Send a new code' }).click(),
    ]);
    expect(await textOf(page)).toMatch(
      /A code was sent a moment ago\. You can ask for another in 30 seconds\./,
    );

    running.site.clock.advance(RESEND_COOLDOWN_MS);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Send a new code' }).click(),
    ]);
    expect(await textOf(page)).toContain('A new code is on its way by text message.');
    const code = await outbox.nextCode('login');
    await enterCode(page, wrongCodeFor(code.code));
    expect(await textOf(page)).toContain('That code is not right. 4 attempts left.');
    await enterCode(page, code.code);
    expect(pathOf(page)).toBe('/account');
  });

  it('says until when the code works in the browser’s own time zone, and in UTC without JavaScript', async () => {
    running = await startSite();
    const person = newPerson({ channel: 'sms' });
    const inParis = await newContext(browser, running.baseUrl, { ...DESKTOP, timezoneId: 'Europe/Paris' });
    const outbox = await openOutbox(inParis);
    const page = await inParis.newPage();
    await register(page, person, outbox);
    await submitPassword(page, person);
    // The test site's clock says 10:00 UTC in November: 11:00 in Paris (CET).
    const until = await page.locator('.sent-to time').textContent();
    expect(until).toMatch(/^\d+ Nov 2026, 11:\d\d (CET|GMT\+1)$/);

    const withoutScript = await newContext(browser, running.baseUrl, {
      ...DESKTOP,
      timezoneId: 'Europe/Paris',
      javaScriptEnabled: false,
    });
    const plain = await withoutScript.newPage();
    await submitPassword(plain, person);
    expect(await plain.locator('.sent-to time').textContent()).toMatch(/^\d+ Nov 2026, 10:\d\d UTC$/);
  });
});
