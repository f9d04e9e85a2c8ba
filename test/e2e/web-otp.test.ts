import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  launchBrowser,
  newContext,
  openOutbox,
  skipBrowserTests,
  startSite,
  type RunningSite,
} from './browser.js';
import { enterCode, newPerson, pathOf, register, submitPassword } from './pages.js';

// A real browser on a shared two-core machine: each journey gets more time than a unit spec.
vi.setConfig({ testTimeout: 60_000 });

/**
 * WebOTP (navigator.credentials.get({ otp })) needs a phone that receives the SMS, so the browser's
 * side of it is played by a stand-in installed before each page loads: it records what the page
 * asked for (in sessionStorage, which outlives the page) and answers with the code this test reads
 * from the outbox, as the browser would after reading an SMS ending "@host #code".
 */
const WEB_OTP_STAND_IN = `(() => {
  let deliver = () => undefined;
  window.deliverSms = (code) => deliver(code);
  window.OTPCredential = function OTPCredential() {};
  Object.defineProperty(navigator, 'credentials', {
    value: {
      get(options) {
        sessionStorage.setItem('otpRequest', JSON.stringify({
          transport: options.otp && options.otp.transport,
          hasSignal: !!options.signal,
        }));
        return new Promise((resolve, reject) => {
          deliver = (code) => resolve({ type: 'otp', code });
          if (options.signal) options.signal.addEventListener('abort', () => {
            sessionStorage.setItem('otpAborted', 'yes');
            reject(new DOMException('aborted', 'AbortError'));
          });
        });
      },
    },
  });
})()`;

describe.skipIf(skipBrowserTests)('the code page with WebOTP', () => {
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

  async function onTheCodePage(context: BrowserContext) {
    const outbox = await openOutbox(context);
    const page = await context.newPage();
    const person = newPerson({ channel: 'sms' });
    await register(page, person, outbox);
    await submitPassword(page, person);
    expect(pathOf(page)).toBe('/verify');
    return { outbox, page };
  }

  it('asks the browser for the SMS code, fills it in and sends it: the person is signed in', async () => {
    running = await startSite();
    const context = await newContext(browser, running.baseUrl);
    await context.addInitScript(WEB_OTP_STAND_IN);
    const { outbox, page } = await onTheCodePage(context);
    const { code, text } = await outbox.nextCode('login');
    // The SMS ends with the origin-bound line the browser matches against this site.
    expect(text).toMatch(new RegExp(`\\n@localhost #${code}$`));

    expect(JSON.parse(String(await page.evaluate(`sessionStorage.getItem('otpRequest')`)))).toEqual({
      transport: ['sms'],
      hasSignal: true,
    });
    await Promise.all([
      page.waitForURL('**/account'),
      page.evaluate(`window.deliverSms(${JSON.stringify(code)})`),
    ]);
    expect(pathOf(page)).toBe('/account');
  });

  it('stops waiting for the SMS when the person types the code and sends it first', async () => {
    running = await startSite();
    const context = await newContext(browser, running.baseUrl);
    await context.addInitScript(WEB_OTP_STAND_IN);
    const { outbox, page } = await onTheCodePage(context);
    const { code } = await outbox.nextCode('login');

    await enterCode(page, code);

    expect(pathOf(page)).toBe('/account');
    expect(await page.evaluate(`sessionStorage.getItem('otpAborted')`)).toBe('yes');
  });
});
