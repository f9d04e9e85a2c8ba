import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import { lastConsoleCode } from '../helpers/create-test-app.js';
import { expectRedirect } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import { confirmNewestLink, createMailTestApp, type MailTestApp } from '../helpers/mail.js';

/**
 * Someone who knows the password and guesses codes pauses the account's code entry; its owner
 * hears of it by email (issue 11), once, and never by SMS.
 */
describe('the notice that code entry was paused', () => {
  let mail: MailTestApp;
  let account: TestAccount;
  beforeEach(async () => {
    mail = await createMailTestApp();
    const browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await confirmNewestLink(mail, browser, 'rosa@example.com');
  });
  afterEach(() => mail.close());

  const attacker = () => createBrowser(mail.site.app);
  const guessWrong = async (times: number, browser = attacker()) => {
    let sent = 0;
    for (let guess = 0; guess < times; guess += 1) {
      // Five tries per code: a new code after each five.
      if (guess % 5 === 0) {
        mail.site.clock.advanceMinutes(1);
        expectRedirect(await submitPassword(browser, account), '/verify');
        sent += 1;
      }
      await submitCode(browser, wrongFor(lastConsoleCode(mail.site.printed)));
    }
    return { sent, browser };
  };

  it('is emailed when wrong codes pause code entry, once however many more are tried', async () => {
    const smsBefore = mail.site.printed.length;
    const { sent: codesSent, browser } = await guessWrong(10);
    const email = await mail.waitForMail('rosa@example.com', 2);
    expect(email.subject).toBe('Code entry on your account was paused');
    expect(email.text).toContain('someone may know your password');
    // The texts that went out were the login codes the attacker asked for, nothing more.
    expect(mail.site.printed.length - smsBefore).toBe(codesSent);

    // Paused: more wrong codes on the page change nothing, and mail nobody again.
    for (let guess = 0; guess < 3; guess += 1) {
      expect((await submitCode(browser, wrongFor(lastConsoleCode(mail.site.printed)))).status).toBe(429);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(mail.mailTo('rosa@example.com')).toHaveLength(2);
    const events = (await mail.site.audit.recent(5)).map((event) => `${event.type}:${event.detail ?? ''}`);
    expect(events).toContain('notice_sent:code_entry_paused');
  });
});
