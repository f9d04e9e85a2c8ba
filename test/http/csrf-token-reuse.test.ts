import type { Request, Response } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCsrfProtection } from '../../src/http/csrf.js';
import { createBrowser, csrfTokenIn } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { logIn, register } from '../helpers/flows.js';

/** How many times csrf-csrf was asked to make (or check and reuse) a page's token. */
const tokensMade = vi.hoisted(() => ({ count: 0 }));
vi.mock('csrf-csrf', async (importOriginal) => {
  const original = await importOriginal<typeof import('csrf-csrf')>();
  return {
    ...original,
    doubleCsrf: (...args: Parameters<typeof original.doubleCsrf>) => {
      const made = original.doubleCsrf(...args);
      return {
        ...made,
        generateCsrfToken: (...call: Parameters<typeof made.generateCsrfToken>) => {
          tokensMade.count += 1;
          return made.generateCsrfToken(...call);
        },
      };
    },
  };
});

describe('a signed-in session’s form token', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(async () => {
    await site.close();
  });

  it('is checked once, then reused on every page without its HMAC being made again', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await logIn(site, browser, account);
    const first = await browser.get('/account');
    expectPage(first, 200, new RegExp(account.username));
    const token = csrfTokenIn(first.text);

    tokensMade.count = 0;
    for (let i = 0; i < 3; i += 1) {
      const page = await browser.get('/account');
      expect(csrfTokenIn(page.text)).toBe(token);
      expect(page.headers['set-cookie'] ?? []).toEqual([]);
    }
    expect(tokensMade.count).toBe(0);
    // The token still passes the full check of a post: logging out with it works.
    expectRedirect(
      await browser.agent.post('/logout').type('form').send({ _csrf: token }),
      '/login?signedOut',
    );
  });

  it('is not taken from the memory for another session, nor for a cookie the browser did not get from us', async () => {
    const owner = createBrowser(site.app);
    const account = await register(owner);
    await logIn(site, owner, account);
    const ownerToken = csrfTokenIn((await owner.get('/account')).text);

    // Another session of the same account, sending the owner's token cookie as if planted.
    const other = createBrowser(site.app);
    await logIn(site, other, account);
    await other.get('/account');
    tokensMade.count = 0;
    const planted = await request(site.app)
      .get('/account')
      .set('Cookie', [other.cookie('mfa.sid')!, `mfa.csrf=${ownerToken}`].join('; '));
    expectPage(planted, 200, new RegExp(account.username));
    expect(tokensMade.count).toBe(1);
    expect(csrfTokenIn(planted.text)).not.toBe(ownerToken);
  });
});

describe('the memory of checked session tokens', () => {
  /** A request of session `sid` sending `tokenCookie` (if any), and a response that keeps what is set. */
  const pageOf = (sid: string, tokenCookie?: string) => {
    const cookies = new Map<string, string>();
    const headers = new Map<string, string>();
    const req = {
      session: {},
      sessionID: sid,
      headers: tokenCookie ? { cookie: `mfa.csrf=${tokenCookie}` } : {},
      cookies: {},
    } as unknown as Request;
    const res = {
      get: (name: string) => headers.get(name.toLowerCase()),
      set: (name: string, value: string) => headers.set(name.toLowerCase(), value),
      cookie: (name: string, value: string) => cookies.set(name, value),
    } as unknown as Response;
    return { req, res, cookies };
  };

  it('keeps at most its bound, forgetting the oldest pair first', () => {
    const csrf = createCsrfProtection({ secret: 'a'.repeat(32), isProduction: false, checkedTokensKept: 2 });
    const tokens = new Map<string, string>();
    for (const sid of ['first', 'second', 'third']) {
      const { req, res } = pageOf(sid);
      tokens.set(sid, csrf.tokenFor(req, res));
    }
    tokensMade.count = 0;
    // The two newest are still known: their pages reuse the token without an HMAC.
    for (const sid of ['third', 'second']) {
      const { req, res } = pageOf(sid, tokens.get(sid));
      expect(csrf.tokenFor(req, res)).toBe(tokens.get(sid));
    }
    expect(tokensMade.count).toBe(0);
    // The oldest went when the third came: its token is checked in full again (and still good).
    const { req, res, cookies } = pageOf('first', tokens.get('first'));
    expect(csrf.tokenFor(req, res)).toBe(tokens.get('first'));
    expect(tokensMade.count).toBe(1);
    expect(cookies.size).toBe(0);
  });
});
