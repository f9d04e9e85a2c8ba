import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { createFactorSecrets } from '../../src/factors/secrets.js';
import { totpSealContext } from '../../src/factors/totp.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser, type Response } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, submitCode, submitPassword, type TestAccount } from '../helpers/flows.js';
import { confirmNewestLink, createMailTestApp, type MailTestApp } from '../helpers/mail.js';
import { confirmSettings, securityPageText } from '../helpers/security.js';

const APP_PATH = '/account/security/app';

/** The key the page shows for typing by hand ("ABCD EFGH …"), as one base32 string. */
function secretOn(page: Response): string {
  const match = page.text.match(/data-secret-key>([A-Z2-7 ]+)</);
  if (!match) throw new Error('no secret key on the page');
  return match[1]!.replace(/ /g, '');
}

/** The inline SVG of the page's QR code. */
function qrCodeOn(page: Response): string {
  const match = page.text.match(/<div class="qr-code"[^>]*>(<svg[\s\S]*?<\/svg>)\s*<\/div>/);
  if (!match) throw new Error('no QR code on the page');
  return match[1]!;
}

/**
 * Setting up an authenticator app on /account/security/app (issue 12). Threats: a stolen session
 * cookie (or a computer left signed in) used to add the thief's own app, which would then pass
 * every later check (so it takes a fresh settings code, and the owner hears of it); a secret shown
 * to the wrong account or left readable in the session store; an app added without proof that it
 * works; a second app slipped in.
 */
describe('setting up an authenticator app', () => {
  let mail: MailTestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    mail = await createMailTestApp();
    browser = createBrowser(mail.site.app);
    account = await register(browser, { username: 'rosa', email: 'rosa@example.com' });
    await confirmNewestLink(mail, createBrowser(mail.site.app), 'rosa@example.com');
    await logIn(mail.site, browser, account);
  });
  afterEach(() => mail.close());

  const rosaId = async () => (await mail.site.users.findByUsername('rosa'))!.id;
  const appsOfRosa = async () => (await mail.site.stores.factors.listForUser(await rosaId())).length;
  const eventsOfRosa = async () =>
    (await mail.site.audit.forUser(await rosaId(), new Date(0))).map((event) => event.type);
  const codeFor = (secret: string, offsetMs = 0) =>
    TOTP.generate({
      secret: Secret.fromBase32(secret),
      timestamp: mail.site.clock.now().getTime() + offsetMs,
    });
  const submitApp = (fields: Record<string, string>) => browser.submit(APP_PATH, APP_PATH, fields);

  it('needs a fresh settings code: without one the page offers it and shows no secret, and a post adds nothing', async () => {
    const page = await browser.get(APP_PATH);
    expectPage(page, 200, /First, confirm it is you/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).not.toContain('<svg');
    expect(page.text).not.toContain('data-secret-key');
    expect(page.text).toContain('name="returnTo" value="/account/security/app"');

    const post = await submitApp({ code: '123456', label: 'Mine' });
    expectRedirect(post, '/account/security');
    expect(await securityPageText(browser)).toContain('confirm it is you with a new code');
    expect(await appsOfRosa()).toBe(0);

    // Signed out, it is the login page.
    expectRedirect(await createBrowser(mail.site.app).get(APP_PATH), /^\/login\?next=/);
  });

  it('comes back to the set-up once the settings code is entered', async () => {
    expectRedirect(
      await browser.submit(APP_PATH, '/account/security/confirm', { returnTo: APP_PATH }),
      '/verify',
    );
    expectRedirect(await submitCode(browser, lastConsoleCode(mail.site.printed, 'settings')), APP_PATH);
    expectPage(await browser.get(APP_PATH), 200, /Scan this QR code/);
  });

  it('shows a QR code drawn by the server as SVG, with nothing from elsewhere, and the key in groups of four', async () => {
    await confirmSettings(mail.site, browser);
    const page = await browser.get(APP_PATH);
    expectPage(page, 200);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');

    const svg = qrCodeOn(page);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>/);
    const withoutNamespace = svg.replace('xmlns="http://www.w3.org/2000/svg"', '');
    expect(withoutNamespace).not.toMatch(
      /https?:|href|<script|<style|style=|\son[a-z]+=|<image|<foreignObject/i,
    );

    const secret = secretOn(page);
    expect(Buffer.from(Secret.fromBase32(secret).bytes).length).toBeGreaterThanOrEqual(20);
    expect(page.text).toMatch(/data-secret-key>[A-Z2-7]{4}( [A-Z2-7]{4}){7}</);
    expect(visibleText(page.text)).toContain('Keyhole (rosa)');
    // While it waits for the code, the session store holds it sealed only.
    const sessions = await mail.site.database.db.selectFrom('sessions').selectAll().execute();
    expect(JSON.stringify(sessions)).toContain('pendingAppEnrolment');
    expect(JSON.stringify(sessions)).not.toContain(secret);
    // A reload shows the same secret: the app may already have scanned it.
    expect(secretOn(await browser.get(APP_PATH))).toBe(secret);
  });

  it('refuses a wrong code with 400, the same QR code, a clear message, and stores nothing', async () => {
    await confirmSettings(mail.site, browser);
    const page = await browser.get(APP_PATH);
    const secret = secretOn(page);
    const right = codeFor(secret);
    const wrong = right === '000000' ? '111111' : '000000';

    const refused = await submitApp({ code: wrong, label: 'Work phone' });
    expectPage(refused, 400, /That code is not the one your app shows now/);
    expect(refused.headers['cache-control']).toBe('no-store');
    expect(qrCodeOn(refused)).toBe(qrCodeOn(page));
    expect(secretOn(refused)).toBe(secret);
    expect(refused.text).toContain('value="Work phone"');
    expect(refused.text).toContain('aria-invalid="true"');

    const notDigits = await submitApp({ code: '12345x', label: 'Work phone' });
    expectPage(notDigits, 400, /Enter the 6-digit code your app shows now/);
    expect(await appsOfRosa()).toBe(0);
    expect(await eventsOfRosa()).not.toContain('factor_added');
  });

  it('adds the app for the code it shows: sealed, in the security log, on the security page, and the owner is told', async () => {
    await confirmSettings(mail.site, browser);
    const secret = secretOn(await browser.get(APP_PATH));
    const code = codeFor(secret);
    expectRedirect(
      await submitApp({ code: `${code.slice(0, 3)} ${code.slice(3)}`, label: 'Work phone' }),
      '/account/security',
    );

    const [app] = await mail.site.stores.factors.listForUser(await rosaId());
    expect(app).toMatchObject({ kind: 'totp', label: 'Work phone' });
    const rows = await mail.site.database.db.selectFrom('factors').select('totp_secret').execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.totp_secret).not.toContain(secret);

    const page = await securityPageText(browser);
    expect(page).toContain('Your authenticator app “Work phone” was added.');
    expect(page).toContain('Work phone is set up');
    expect(page).toContain('last used never');
    expect(page).toContain('Authenticator app or passkey added (authenticator app “Work phone”)');
    expect(page).not.toContain('Set up an authenticator app');
    expect(await eventsOfRosa()).toContain('factor_added');

    const notice = await mail.waitForMail('rosa@example.com', 2);
    expect(notice.subject).toBe('An authenticator app was added to your account');
    expect(notice.text).not.toContain(secret);

    // The code that proved the app is spent.
    expect((await mail.site.stores.factors.listForUser(await rosaId()))[0]).toMatchObject({
      lastStep: Math.floor(mail.site.clock.now().getTime() / 30_000),
    });
  });

  it('keeps one app per account: the page sends you back, and a set-up begun before is refused', async () => {
    await confirmSettings(mail.site, browser);
    const first = secretOn(await browser.get(APP_PATH));
    // A second tab began its own set-up before the first finished.
    const secondTab = createBrowser(mail.site.app);
    await logIn(mail.site, secondTab, account);
    await confirmSettings(mail.site, secondTab);
    const second = secretOn(await secondTab.get(APP_PATH));

    expectRedirect(await submitApp({ code: codeFor(first), label: 'One' }), '/account/security');
    expectRedirect(await browser.get(APP_PATH), '/account/security');
    expect(await securityPageText(browser)).toContain('Your account already has an authenticator app.');

    mail.site.clock.advance(30_000);
    const late = await secondTab.submit('/account/security', APP_PATH, {
      code: codeFor(second),
      label: 'Two',
    });
    expectRedirect(late, '/account/security');
    expect(await securityPageText(secondTab)).toContain('Your account already has an authenticator app.');
    expect(await appsOfRosa()).toBe(1);
  });

  // The settings code lasts 5 minutes, so a set-up this old also took a new one.
  it('lets the app’s code log in once it is set up, and each code only once', async () => {
    await confirmSettings(mail.site, browser);
    const secret = secretOn(await browser.get(APP_PATH));
    expectRedirect(await submitApp({ code: codeFor(secret), label: 'Work phone' }), '/account/security');

    const logInWithApp = async (code: string) => {
      const other = createBrowser(mail.site.app);
      expectRedirect(await submitPassword(other, account), '/verify');
      expectRedirect(await other.submit('/verify', '/verify/method', { method: 'totp' }), '/verify');
      return other.submit('/verify', '/verify', { method: 'totp', code });
    };
    // The code that confirmed the app is spent already.
    expectPage(await logInWithApp(codeFor(secret)), 400, /That code was used already/);
    mail.site.clock.advance(30_000);
    const code = codeFor(secret);
    expectRedirect(await logInWithApp(code), '/account');
    expectPage(await logInWithApp(code), 400, /That code was used already/);
    expect(await securityPageText(browser)).toContain('Work phone is set up');
  });

  it('shows a new QR code once the one shown is 10 minutes old', async () => {
    await confirmSettings(mail.site, browser);
    const old = secretOn(await browser.get(APP_PATH));
    mail.site.clock.advanceMinutes(10);
    await confirmSettings(mail.site, browser);
    const late = await browser.submit('/account/security', APP_PATH, { code: codeFor(old), label: 'Late' });
    expectRedirect(late, APP_PATH);
    const page = await browser.get(APP_PATH);
    expect(visibleText(page.text)).toContain('That set-up has expired');
    expect(secretOn(page)).not.toBe(old);
    expect(await appsOfRosa()).toBe(0);
  });

  it('keeps the QR code already scanned when the settings code runs out and a new one is entered', async () => {
    // A person slow to scan: the 5-minute settings code ends before the app's code is typed.
    await confirmSettings(mail.site, browser);
    const scanned = secretOn(await browser.get(APP_PATH));
    mail.site.clock.advanceMinutes(6);
    expectRedirect(await submitApp({ code: codeFor(scanned), label: 'Slow phone' }), '/account/security');
    await confirmSettings(mail.site, browser);
    expect(secretOn(await browser.get(APP_PATH))).toBe(scanned);
    expectRedirect(await submitApp({ code: codeFor(scanned), label: 'Slow phone' }), '/account/security');
    expect(await appsOfRosa()).toBe(1);
  });
});

/**
 * An app whose sealed secret no longer opens: FACTOR_ENCRYPTION_KEY was changed (or lost) since it
 * was added. Threat to availability: every app code, and every page that checked one, was a 500.
 */
describe('an authenticator app sealed under another key', () => {
  let site: TestApp;
  let logLines: string[];
  let account: TestAccount;
  beforeEach(async () => {
    logLines = [];
    site = await createTestApp({ logLines, logLevel: 'error' });
    account = await register(createBrowser(site.app), { username: 'rosa' });
    const rosa = (await site.users.findByUsername('rosa'))!;
    const otherKey = createFactorSecrets(Buffer.alloc(32, 9));
    await site.stores.factors.add(
      {
        kind: 'totp',
        userId: rosa.id,
        label: 'Phone app',
        sealedSecret: otherKey.seal(randomBytes(20), totpSealContext(rosa.id)),
        lastStep: null,
      },
      { maxPerKind: 1 },
    );
    await site.users.setDefaultFactor(rosa.id, 'totp');
  });
  afterEach(() => site.close());

  it('is not offered, a code for it is refused with a 400, the operator is told, and the phone still works', async () => {
    const browser = createBrowser(site.app);
    expectRedirect(await submitPassword(browser, account), '/verify');
    const page = await browser.get('/verify');
    expectPage(page, 200, /Enter your code/);
    expect(visibleText(page.text)).toContain('We sent a 6-digit login code');
    expect(page.text).not.toContain('Use my authenticator app');

    expectPage(
      await browser.submit('/verify', '/verify/method', { method: 'totp' }),
      400,
      /cannot be used here/,
    );
    expectPage(
      await browser.submit('/verify', '/verify', { method: 'totp', code: '123456' }),
      400,
      /cannot be used here/,
    );
    const logged = logLines.map((line) => JSON.parse(line) as { msg: string });
    expect(logged.some((line) => line.msg.includes('FACTOR_ENCRYPTION_KEY'))).toBe(true);

    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
  });
});
