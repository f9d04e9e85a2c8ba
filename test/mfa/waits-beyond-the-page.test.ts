import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';

/**
 * Friction (issue 11): a page that says "wait 15 minutes" on a half-finished login that lasts 10
 * sends the person back to a page that has timed out. Such pages say so, and offer a start again
 * that works.
 */
describe('a wait longer than the half-finished step', () => {
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    site = await createTestApp();
    browser = createBrowser(site.app);
    account = await register(browser, { username: 'rosa' });
  });
  afterEach(() => site.close());

  it('is said on the paused code page, with a start again that leads to a login that works', async () => {
    // Ten wrong codes (two codes of five tries) pause code entry for 15 minutes.
    for (let round = 0; round < 2; round += 1) {
      site.clock.advanceMinutes(1);
      expectRedirect(await submitPassword(browser, account), '/verify');
      for (let guess = 0; guess < 5; guess += 1) {
        await submitCode(browser, wrongFor(lastConsoleCode(site.printed)));
      }
    }
    const page = await browser.get('/verify');
    expectPage(page, 200, /code entry is paused/);
    const text = visibleText(page.text);
    expect(text).toContain('That is longer than this page lasts');
    expect(text).toMatch(/Come back after \d+ \w+ 2026, 10:1[67] UTC and start again/);

    expectRedirect(await browser.submit('/verify', '/verify/start-over'), '/login');
    expectRedirect(await browser.get('/verify'), '/login');
    // After the wait, a fresh login works.
    site.clock.advanceMinutes(16);
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
  });

  it('is not said when the wait ends while the page still lasts', async () => {
    expectRedirect(await submitPassword(browser, account), '/verify');
    for (let guess = 0; guess < 5; guess += 1) {
      await submitCode(browser, wrongFor(lastConsoleCode(site.printed)));
    }
    // A resend within the 30-second cooldown: a short wait.
    const page = await browser.submit('/verify', '/verify/resend');
    expect(visibleText(page.text)).not.toContain('That is longer than this page lasts');
  });

  it('sends the login form on, not to a timed-out code page, when a send limit outlasts the login', async () => {
    // Five codes in 15 minutes (the sign-up code was the first), then the next login is refused
    // for longer than a login lasts.
    for (let login = 0; login < 4; login += 1) {
      site.clock.advance(31_000);
      expectRedirect(await submitPassword(browser, account), '/verify');
    }
    site.clock.advance(31_000);
    const refused = await submitPassword(browser, account);
    expectPage(refused, 429, /Your login times out before then, so log in again after that/);
    expect(refused.text).toContain('href="/login"');
    expect(refused.text).not.toContain('href="/verify"');
  });
});
