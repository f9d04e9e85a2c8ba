import { Secret, TOTP } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFactorSecrets } from '../../src/factors/secrets.js';
import { RESET_APP_FAILURES_PER_DAY, totpSealContext } from '../../src/factors/totp.js';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { TEST_FACTOR_KEY } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { register, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import { confirmNewestLink, createMailTestApp, linkPathIn, type MailTestApp } from '../helpers/mail.js';

const RESET_SUBJECT = 'Reset your password for Keyhole';
const PAUSED_SUBJECT = 'Your authenticator app was paused for password resets';

/**
 * Wrong authenticator app codes at password resets. Threat (security review of issue 12): whoever
 * reads the account's mailbox asks for a reset link, guesses app codes until that reset ends (10
 * wrong codes), then asks for another link: 10 links a day, 100 guesses a day, every day. So wrong
 * app codes at resets also count per account, across sessions: 10 in 24 hours, then resets take
 * no app code for the rest of that day, and the owner hears of it by email. Logins are not touched.
 */
describe('wrong authenticator app codes at password resets', () => {
  let mail: MailTestApp;
  let account: TestAccount;
  let secret: Secret;

  beforeEach(async () => {
    mail = await createMailTestApp();
    const browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await confirmNewestLink(mail, browser, 'rosa@example.com');
    const rosa = (await mail.site.users.findByUsername('rosa'))!;
    secret = new Secret({ size: 20 });
    await mail.site.stores.factors.add(
      {
        kind: 'totp',
        userId: rosa.id,
        label: 'Phone app',
        sealedSecret: createFactorSecrets(TEST_FACTOR_KEY).seal(
          Buffer.from(secret.bytes),
          totpSealContext(rosa.id),
        ),
        lastStep: null,
      },
      { maxPerKind: 1 },
    );
  });
  afterEach(() => mail.close());

  const appCode = () => TOTP.generate({ secret, timestamp: mail.site.clock.now().getTime() });
  const resetMails = () => mail.mailTo('rosa@example.com').filter((email) => email.subject === RESET_SUBJECT);

  /** A new reset link, opened in a browser of its own, on the app's form of the reset code page. */
  async function startReset(): Promise<Browser> {
    mail.site.clock.advanceMinutes(2);
    const browser = createBrowser(mail.site.app);
    const sent = resetMails().length;
    expectPage(await browser.submit('/forgot', '/forgot', { identifier: 'rosa' }), 200);
    await mail.waitForMail('rosa@example.com');
    await expect.poll(() => resetMails().length).toBe(sent + 1);
    const link = linkPathIn(resetMails().at(-1)!);
    expectRedirect(await browser.submit(link, link), '/verify');
    expectRedirect(await browser.submit('/verify', '/verify/method', { method: 'totp' }), '/verify');
    return browser;
  }

  const enterAppCode = (browser: Browser, code: string) =>
    browser.submit('/verify', '/verify', { method: 'totp', code });

  it('pause the app at resets after 10 in a day across reset links, tell the owner, and leave logins alone', async () => {
    const first = await startReset();
    for (let guess = 1; guess < RESET_APP_FAILURES_PER_DAY; guess += 1) {
      expectPage(await enterAppCode(first, wrongFor(appCode())), 400, /That code is not right/);
    }
    // A new link, a new session: the account's count goes on.
    const second = await startReset();
    const paused = await enterAppCode(second, wrongFor(appCode()));
    expectPage(paused, 429, /Too many wrong authenticator app codes at password resets/);
    expect(Number(paused.headers['retry-after'])).toBeGreaterThan(23 * 3600);
    // Now even the right code is refused at a reset, in this session or the next.
    expectPage(await enterAppCode(second, appCode()), 429);
    mail.site.clock.advance(30_000);
    expectPage(await enterAppCode(await startReset(), appCode()), 429);

    const notices = () => mail.mailTo('rosa@example.com').filter((email) => email.subject === PAUSED_SUBJECT);
    await expect.poll(() => notices().length).toBe(1);
    expect(notices()[0]!.text).toContain('someone can read your email');

    // The owner's logins take the app as before.
    mail.site.clock.advance(30_000);
    const owner = createBrowser(mail.site.app);
    expectRedirect(await submitPassword(owner, account), '/verify');
    expectRedirect(await owner.submit('/verify', '/verify/method', { method: 'totp' }), '/verify');
    expectRedirect(await enterAppCode(owner, appCode()), '/account');

    // A day later, resets take the app again.
    mail.site.clock.advanceMinutes(24 * 60);
    expectRedirect(await enterAppCode(await startReset(), appCode()), '/reset/password');
  });
});
