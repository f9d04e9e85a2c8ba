import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { register, type TestAccount } from '../helpers/flows.js';
import { logInRemembered, loginAfterPassword, rememberedToken } from '../helpers/remembered.js';
import { securityPageText } from '../helpers/security.js';

const FIREFOX_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SAFARI_ON_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/**
 * The remembered browsers on /account/security (issue 12). Threats: a remembered browser the
 * owner cannot see or take back (a lost laptop); one account forgetting another's by sending its
 * id; a page that shows the token someone could copy.
 */
describe('the remembered browsers on /account/security', () => {
  let site: TestApp;
  let laptop: Browser;
  let phone: Browser;
  let rosa: TestAccount;
  let rosaId: number;

  beforeEach(async () => {
    site = await createTestApp();
    laptop = createBrowser(site.app);
    phone = createBrowser(site.app);
    void laptop.agent.set('User-Agent', FIREFOX_ON_WINDOWS);
    void phone.agent.set('User-Agent', SAFARI_ON_IPHONE);
    rosa = await register(createBrowser(site.app), { username: 'rosa' });
    rosaId = (await site.users.findByUsername('rosa'))!.id;
    await logInRemembered(site, laptop, rosa);
    site.clock.advanceMinutes(4);
    await logInRemembered(site, phone, rosa);
  });
  afterEach(() => site.close());

  const forget = (browser: string, from = laptop) =>
    from.submit('/account/security', '/account/security/remembered-browsers/forget', { browser });
  const idOf = async (label: string) =>
    (await site.stores.rememberedBrowsers.listForUser(rosaId)).find((entry) => entry.label === label)!.id;

  it('lists each by browser and system, when it was remembered, last used and expires; never its token', async () => {
    const page = await laptop.get('/account/security');
    expectPage(page, 200);
    const text = visibleText(page.text);
    expect(text).toContain('Remembered browsers');
    expect(text).toMatch(
      /Safari on iPhone 21 Nov 2026, 10:04 UTC 21 Nov 2026, 10:04 UTC 21 Dec 2026, 10:04 UTC Forget/,
    );
    expect(text).toMatch(
      /Firefox on Windows 21 Nov 2026, 10:00 UTC 21 Nov 2026, 10:00 UTC 21 Dec 2026, 10:00 UTC/,
    );
    expect(text).toContain('Forget every browser');
    expect(page.text).not.toContain(rememberedToken(laptop));
    expect(page.text).not.toContain(rememberedToken(phone));
  });

  it('forgets one, at once and without a code: its next login asks for one, the other’s does not', async () => {
    expectRedirect(await forget(String(await idOf('Safari on iPhone'))), '/account/security');
    expect(await securityPageText(laptop)).toContain('That browser is forgotten');
    const events = await site.audit.forUser(rosaId, new Date(0));
    expect(events[0]).toMatchObject({ type: 'remembered_browser_forgotten' });
    expect(await loginAfterPassword(phone, rosa)).toBe('/verify');
    expect(await loginAfterPassword(laptop, rosa)).toBe('/account');
  });

  it('forgets every one', async () => {
    expectRedirect(
      await laptop.submit('/account/security', '/account/security/remembered-browsers/forget-all'),
      '/account/security',
    );
    const text = await securityPageText(laptop);
    expect(text).toContain('2 browsers are forgotten');
    expect(text).toContain('No browser is remembered.');
    expect(await loginAfterPassword(phone, rosa)).toBe('/verify');
    expect(await loginAfterPassword(laptop, rosa)).toBe('/verify');
  });

  it('never forgets another account’s browser by the id sent', async () => {
    const sami = await register(createBrowser(site.app), { username: 'sami' });
    const samis = createBrowser(site.app);
    site.clock.advanceMinutes(4);
    await logInRemembered(site, samis, sami);
    const samiId = (await site.users.findByUsername('sami'))!.id;
    const [samisBrowser] = await site.stores.rememberedBrowsers.listForUser(samiId);
    expectRedirect(await forget(String(samisBrowser!.id)), '/account/security');
    expect(await securityPageText(laptop)).toContain('That browser was already forgotten');
    expect(await loginAfterPassword(samis, sami)).toBe('/account');
  });

  it('answers a malformed id with a 400, and a visitor with the login', async () => {
    const page = await laptop.get('/account/security');
    const bad = await laptop.agent
      .post('/account/security/remembered-browsers/forget')
      .type('form')
      .send({ browser: '1; drop', _csrf: csrfTokenIn(page.text) });
    expectPage(bad, 400, /That browser is not one of yours/);
    const visitor = createBrowser(site.app);
    expectRedirect(
      await visitor.submit('/login', '/account/security/remembered-browsers/forget-all'),
      /^\/login\?next=/,
    );
    expect(await site.stores.rememberedBrowsers.listForUser(rosaId)).toHaveLength(2);
  });
});
