import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sessionHandleOf } from '../../src/auth/account-sessions.js';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from '../helpers/expectations.js';
import { logIn, register, type TestAccount } from '../helpers/flows.js';
import { securityPageText, sessionIdOf } from '../helpers/security.js';

const FIREFOX_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SAFARI_ON_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/**
 * The account's sessions on /account/security (issue 11). Threats: a session the owner does not
 * recognise (a stolen cookie, a computer left signed in) that they cannot end; one account ending
 * another's sessions by sending its handle; a page that shows a session id someone could replay.
 */
describe('the sessions on /account/security', () => {
  let site: TestApp;
  let laptop: Browser;
  let phone: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    site = await createTestApp();
    laptop = createBrowser(site.app);
    phone = createBrowser(site.app);
    void laptop.agent.set('User-Agent', FIREFOX_ON_WINDOWS);
    void phone.agent.set('User-Agent', SAFARI_ON_IPHONE);
    account = await register(createBrowser(site.app), { username: 'rosa' });
    await logIn(site, laptop, account);
    site.clock.advanceMinutes(2);
    await logIn(site, phone, account);
  });
  afterEach(() => site.close());

  it('lists this session and the others, by browser and system, masked address, start and last use; never an id', async () => {
    const page = await laptop.get('/account/security');
    expectPage(page, 200);
    const text = visibleText(page.text);
    expect(text).toMatch(
      /Firefox on Windows 127\.0\.x\.x \d+ \w+ 2026, 10:00 UTC \d+ \w+ 2026, 10:0\d UTC This session/,
    );
    expect(text).toMatch(/Safari on iPhone 127\.0\.x\.x \d+ \w+ 2026, 10:02 UTC \d+ \w+ 2026, 10:02 UTC End/);
    expect(page.text).not.toContain(sessionIdOf(laptop));
    expect(page.text).not.toContain(sessionIdOf(phone));
    expect(page.text).toContain(`value="${sessionHandleOf(sessionIdOf(phone))}"`);
    expect(page.text).not.toContain(`value="${sessionHandleOf(sessionIdOf(laptop))}"`);
  });

  it('ends one other session, at once, without a code', async () => {
    const res = await laptop.submit('/account/security', '/account/security/sessions/end', {
      session: sessionHandleOf(sessionIdOf(phone)),
    });
    expectRedirect(res, '/account/security');
    expect(await securityPageText(laptop)).toContain('That session was ended');
    expectRedirect(await phone.get('/account'), '/login?next=%2Faccount');
    expectPage(await laptop.get('/account'), 200);
    const events = await site.audit.forUser((await site.users.findByUsername('rosa'))!.id, new Date(0));
    expect(events[0]).toMatchObject({ type: 'session_ended', detail: '1 other session' });

    // Again: it is gone already.
    expectRedirect(
      await laptop.submit('/account/security', '/account/security/sessions/end', {
        session: sessionHandleOf(sessionIdOf(phone)),
      }),
      '/account/security',
    );
    expect(await securityPageText(laptop)).toContain('That session had already ended');
  });

  it('ends every other session and keeps this one', async () => {
    const third = createBrowser(site.app);
    await logIn(site, third, account);
    expectRedirect(
      await laptop.submit('/account/security', '/account/security/sessions/end-others'),
      '/account/security',
    );
    const text = await securityPageText(laptop);
    expect(text).toContain('2 other sessions were ended');
    expect(text).not.toContain('End every other session');
    expectRedirect(await phone.get('/account'), '/login?next=%2Faccount');
    expectRedirect(await third.get('/account'), '/login?next=%2Faccount');
    expectPage(await laptop.get('/account'), 200);
  });

  it('never ends another account’s session, nor this one, by the handle sent', async () => {
    const sami = await register(createBrowser(site.app), { username: 'sami' });
    const samisBrowser = createBrowser(site.app);
    await logIn(site, samisBrowser, sami);
    const res = await laptop.submit('/account/security', '/account/security/sessions/end', {
      session: sessionHandleOf(sessionIdOf(samisBrowser)),
    });
    expectRedirect(res, '/account/security');
    expect(await securityPageText(laptop)).toContain('That session had already ended');
    expectPage(await samisBrowser.get('/account'), 200);

    expectRedirect(
      await laptop.submit('/account/security', '/account/security/sessions/end', {
        session: sessionHandleOf(sessionIdOf(laptop)),
      }),
      '/account/security',
    );
    expect(await securityPageText(laptop)).toContain('That is the session you are using now');
    expectPage(await laptop.get('/account'), 200);
  });

  it('answers a malformed handle with a 400, and a visitor with the login', async () => {
    const page = await laptop.get('/account/security');
    const bad = await laptop.agent
      .post('/account/security/sessions/end')
      .type('form')
      .send({ session: 'not a handle', _csrf: csrfTokenIn(page.text) });
    expectPage(bad, 400, /That session is not one of yours/);
    expectPage(await phone.get('/account'), 200);
    const visitor = createBrowser(site.app);
    expectRedirect(
      await visitor.submit('/login', '/account/security/sessions/end-others'),
      '/login?next=%2Faccount%2Fsecurity%2Fsessions%2Fend-others',
    );
    expectPage(await phone.get('/account'), 200);
  });
});
