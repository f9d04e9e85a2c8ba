import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Response } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';

describe('CSRF protection', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it.each(['/login', '/register', '/verify', '/verify/resend', '/logout', '/admin/step-up'])(
    'refuses POST %s without a token with a 403 page',
    async (path) => {
      // Threat: another site making a signed-in browser submit our forms.
      const browser = createBrowser(site.app);
      await browser.get('/login');
      const res = await browser.agent.post(path).type('form').send({ username: 'a', password: 'b' });
      expectPage(res, 403, /did not come from this site/);
      // What to do next fits this case: not the access advice of other 403 pages.
      expect(res.text).toMatch(/Nothing was changed\./);
      expect(res.text).toMatch(/href="\/login"/);
      expect(res.text).not.toMatch(/ask an administrator/);
    },
  );

  it('refuses a token from another session (login CSRF)', async () => {
    const attacker = createBrowser(site.app);
    const attackerToken = (await attacker.get('/login')).text.match(/name="_csrf" value="([^"]+)"/)![1]!;
    const victim = createBrowser(site.app);
    await victim.get('/login');
    const res = await victim.agent
      .post('/login')
      .type('form')
      .send({ username: 'x', password: 'y', _csrf: attackerToken });
    expectPage(res, 403);
  });

  it('changes nothing on GET: logging out needs a form post', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    await submitPassword(browser, account);
    await submitCode(browser, lastConsoleCode(site.printed));
    const codesSent = site.printed.length;
    expect((await browser.get('/logout')).status).toBe(404);
    expectPage(await browser.get('/account'), 200);
    expect((await browser.get('/verify/resend')).status).toBe(404);
    expect((await browser.get('/admin/step-up')).status).toBeGreaterThanOrEqual(400);
    expect(site.printed.length).toBe(codesSent);
  });
});

/** The name=value part of each cookie a response sets. */
const cookiePairsOf = (res: Response) => setCookieHeaders(res).map((cookie) => cookie.split(';')[0]!);
const cookieNamed = (res: Response, name: string) =>
  setCookieHeaders(res).find((cookie) => cookie.startsWith(`${name}=`));

describe('CSRF tokens before the session starts', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  /** What a visitor's browser holds after loading the login page: its cookies and the form's token. */
  async function visitorOnLoginPage() {
    const page = await request(site.app).get('/login');
    const pairOf = (name: string) => cookieNamed(page, name)!.split(';')[0]!;
    return {
      cookies: cookiePairsOf(page),
      preSession: pairOf('mfa.presession'),
      tokenCookie: pairOf('mfa.csrf'),
      token: csrfTokenIn(page.text),
    };
  }

  const postLogin = (cookies: string[], token: unknown, path = '/login') =>
    request(site.app)
      .post(path)
      .set('Cookie', cookies.join('; '))
      .type('form')
      .send({ username: 'someone', password: 'their password', _csrf: token } as Record<string, string>);

  it('binds the form’s token to a random HttpOnly pre-session cookie, and starts no session', async () => {
    const page = await request(site.app).get('/login');
    expect(cookieNamed(page, 'mfa.sid')).toBeUndefined();
    for (const name of ['mfa.presession', 'mfa.csrf']) {
      const cookie = cookieNamed(page, name);
      expect(cookie, name).toMatch(/; Path=\/;/);
      expect(cookie, name).toMatch(/; HttpOnly/);
      expect(cookie, name).toMatch(/; SameSite=Lax/);
      expect(cookie, name).not.toMatch(/Domain=|Secure/);
    }
    const other = await request(site.app).get('/login');
    expect(cookieNamed(other, 'mfa.presession')).not.toBe(cookieNamed(page, 'mfa.presession'));
    expect(csrfTokenIn(other.text)).not.toBe(csrfTokenIn(page.text));
  });

  it('ends the pre-session after 12 hours, at the password step and at logout', async () => {
    // Threat: a login form's token that lives as long as the browser (or a restored tab), inherited
    // by the next person at a shared computer.
    const page = await request(site.app).get('/login');
    for (const name of ['mfa.presession', 'mfa.csrf']) {
      expect(cookieNamed(page, name), name).toMatch(/; Max-Age=43200;/);
    }
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const clearsPreSession = (res: Response) =>
      expect(cookieNamed(res, 'mfa.presession')).toMatch(
        /^mfa\.presession=; Path=\/; Expires=Thu, 01 Jan 1970/,
      );
    const signedIn = await submitPassword(browser, account);
    expectRedirect(signedIn, '/verify');
    clearsPreSession(signedIn);
    const loggedOut = await browser.submit('/verify', '/logout');
    expectRedirect(loggedOut, '/login?signedOut');
    clearsPreSession(loggedOut);
  });

  it('keeps one token per browser across its forms and tabs, and sends no cookie again', async () => {
    const browser = createBrowser(site.app);
    const first = await browser.get('/login');
    const again = await browser.get('/register');
    expect(csrfTokenIn(again.text)).toBe(csrfTokenIn(first.text));
    expect(setCookieHeaders(again)).toEqual([]);
    // The page is this browser's own, even without a Set-Cookie: no shared cache may keep it.
    expect(again.headers['cache-control']).toBe('private, no-cache');
    // The first form still works after the second page was shown.
    const res = await browser.agent
      .post('/login')
      .type('form')
      .send({ username: 'nobody', password: 'wrong password', _csrf: csrfTokenIn(first.text) });
    expectPage(res, 401, /Invalid username or password/);
  });

  it.each(['/login', '/register'])(
    'refuses POST %s whose token comes without the cookies it was made for (login CSRF)',
    async (path) => {
      // Threat: another site posting our login form with the attacker's own credentials and a token
      // the attacker fetched, so that the victim's browser ends up in the attacker's account.
      const { cookies, preSession, tokenCookie, token } = await visitorOnLoginPage();
      for (const sent of [[], [preSession], [tokenCookie]]) {
        expectPage(await postLogin(sent, token, path), 403, /did not come from this site/);
      }
      // Another visitor's own cookies do not make the token good either.
      const victim = await visitorOnLoginPage();
      expectPage(await postLogin(victim.cookies, token, path), 403);
      expectPage(await postLogin([victim.preSession, tokenCookie], token, path), 403);
      // With its own cookies, the same form goes through (to the password check).
      expect((await postLogin(cookies, token, path)).status).not.toBe(403);
    },
  );

  it('refuses after the password step a token made before it, and a token made before login once signed in', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser);
    const beforePassword = csrfTokenIn((await browser.get('/login')).text);
    await submitPassword(browser, account);
    const send = (path: string, token: string, fields: Record<string, string> = {}) =>
      browser.agent
        .post(path)
        .type('form')
        .send({ ...fields, _csrf: token });
    expectPage(await send('/verify', beforePassword, { code: '000000' }), 403);
    expectPage(await send('/verify/resend', beforePassword), 403);

    const onCodePage = csrfTokenIn((await browser.get('/verify')).text);
    expectRedirect(await send('/verify', onCodePage, { code: lastConsoleCode(site.printed) }), '/account');
    // The accepted code started a new session: the code page's token is over too.
    expectPage(await send('/logout', onCodePage), 403);
    expectPage(await send('/logout', beforePassword), 403);
    expectPage(await browser.get('/account'), 200);
  });

  it('refuses a token and cookies planted by an attacker in a signed-in session', async () => {
    // Threat: cookie tossing. Someone who can set cookies for our host (a sibling subdomain,
    // where there is no __Host- prefix) plants their own pre-session and token cookies, which
    // go with their token, in a signed-in victim's browser, and posts a form there.
    const victim = createBrowser(site.app);
    const account = await register(victim);
    await submitPassword(victim, account);
    await submitCode(victim, lastConsoleCode(site.printed));
    const sessionCookie = victim.cookie('mfa.sid')!;
    const attacker = await visitorOnLoginPage();

    const forged = await postLogin([sessionCookie, ...attacker.cookies], attacker.token, '/logout');
    expectPage(forged, 403, /did not come from this site/);
    expectPage(await victim.get('/account'), 200, new RegExp(account.username));
  });

  it('answers doubled, malformed and huge cookies with a fresh form or a 403, never a 5xx', async () => {
    const { cookies, preSession, tokenCookie, token } = await visitorOnLoginPage();
    const hostile = [
      [preSession, tokenCookie, tokenCookie],
      [preSession, preSession, tokenCookie],
      [preSession, tokenCookie, `mfa.csrf=${token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))}`],
      [`mfa.presession=${'x'.repeat(6000)}`, `mfa.csrf=${'a'.repeat(6000)}`],
      ['mfa.presession=%', 'mfa.csrf=%zz', 'mfa.presession', '=;;'],
      [`${preSession}%00`, tokenCookie],
    ];
    for (const sent of hostile) {
      const page = await request(site.app).get('/login').set('Cookie', sent.join('; '));
      expectPage(page, 200, /Log in/);
      expectPage(await postLogin(sent, token), 403);
      expectPage(await postLogin(sent, csrfTokenIn(page.text)), 403);
    }
    // A token sent twice, or oversized, in the form itself.
    for (const sent of [[token, token], 'a'.repeat(10_000)]) {
      expectPage(await postLogin(cookies, sent), 403);
    }
  });

  it('uses Secure __Host- cookies in production, and ignores the same names without the prefix', async () => {
    const production = await createTestApp({ env: PRODUCTION_ENV });
    try {
      const page = await request(production.app).get('/login').set('X-Forwarded-Proto', 'https');
      expect(cookieNamed(page, '__Host-mfa.sid')).toBeUndefined();
      for (const name of ['__Host-mfa.presession', '__Host-mfa.csrf']) {
        const cookie = cookieNamed(page, name);
        expect(cookie, name).toMatch(/; Path=\/;/);
        expect(cookie, name).toMatch(/; HttpOnly/);
        expect(cookie, name).toMatch(/; Secure/);
        expect(cookie, name).toMatch(/; SameSite=Lax/);
        expect(cookie, name).not.toMatch(/Domain=/);
      }
      const token = csrfTokenIn(page.text);
      const post = (cookies: string[]) =>
        request(production.app)
          .post('/login')
          .set('X-Forwarded-Proto', 'https')
          .set('Cookie', cookies.join('; '))
          .type('form')
          .send({ username: 'someone', password: 'their password', _csrf: token });
      // A subdomain can toss cookies without the prefix, never ones with it.
      expectPage(await post(cookiePairsOf(page).map((cookie) => cookie.replace('__Host-', ''))), 403);
      expectPage(await post(cookiePairsOf(page)), 401);
    } finally {
      await production.close();
    }
  });
});

describe('security headers', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('sends a Content-Security-Policy with no inline script, and helmet’s other headers', async () => {
    const res = await createBrowser(site.app).get('/login');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('same-origin');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('pages carry no inline script', async () => {
    const browser = createBrowser(site.app);
    for (const path of ['/login', '/register']) {
      const html = (await browser.get(path)).text;
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\son\w+="/);
    }
  });

  it('adds HSTS in production only', async () => {
    expect(
      (await createBrowser(site.app).get('/login')).headers['strict-transport-security'],
    ).toBeUndefined();
    const production = await createTestApp({ env: PRODUCTION_ENV });
    try {
      const res = await createBrowser(production.app).agent.get('/login').set('X-Forwarded-Proto', 'https');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=31536000/);
    } finally {
      await production.close();
    }
  });
});

describe('pages for things that go wrong', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('answers an unknown address with a 404 page in the layout', async () => {
    expectPage(await createBrowser(site.app).get('/no/such/page'), 404, /Page not found/);
  });

  it('answers a non-admin on /admin with a 403 page and records it', async () => {
    const browser = createBrowser(site.app);
    const account = await register(browser, { username: 'bob' });
    await submitPassword(browser, account);
    await submitCode(browser, lastConsoleCode(site.printed));
    const denied = await browser.get('/admin');
    expectPage(denied, 403, /for administrators only/);
    expect(denied.text).toMatch(/ask an administrator/);
    expect((await site.audit.recent())[0]).toMatchObject({ type: 'admin_denied', username: 'bob' });
  });

  it('sends someone who is not logged in from /admin to the login page, and back after', async () => {
    expectRedirect(await createBrowser(site.app).get('/admin'), '/login?next=%2Fadmin');
  });

  it('answers an unexpected failure with a 500 page in the layout, logged for the operator, never a stack trace', async () => {
    const logLines: string[] = [];
    const broken = await createTestApp({
      logLines,
      hasher: {
        hash: async () => 'unused',
        verify: async () => {
          throw new Error('hasher exploded at /srv/app/secret-path.ts:12:3');
        },
      },
    });
    try {
      const res = await createBrowser(broken.app).submit('/login', '/login', {
        username: 'x',
        password: 'y',
      });
      expectPage(res, 500, /Something went wrong on our side/);
      expect(res.text).toMatch(/Going back and trying again usually works/);
      expect(res.text).toMatch(/class="site-header"/);
      expect(res.text).not.toContain('hasher exploded');
      expect(logLines.join('\n')).toMatch(/hasher exploded/);
      // The site is still up.
      expect((await createBrowser(broken.app).get('/healthz')).status).toBe(200);
    } finally {
      await broken.close();
    }
  });

  it('answers an oversized form with a 413 page, not a crash', async () => {
    const browser = createBrowser(site.app);
    const res = await browser.submit('/login', '/login', { username: 'x', password: 'y'.repeat(40_000) });
    expectPage(res, 413, /too large/);
  });
});

describe('assets', () => {
  it('serves the stylesheet, the script and the icon from the site itself', async () => {
    const site = await createTestApp();
    try {
      const browser = createBrowser(site.app);
      const css = await browser.get('/assets/css/site.css');
      expect(css.status).toBe(200);
      expect(css.headers['content-type']).toMatch(/text\/css/);
      expect(css.text).toMatch(/prefers-color-scheme: dark/);
      expect((await browser.get('/assets/js/site.js')).headers['content-type']).toMatch(/javascript/);
      expect((await browser.get('/assets/favicon.svg')).status).toBe(200);
      const page = (await browser.get('/login')).text;
      for (const asset of page.matchAll(/(?:href|src)="(\/assets\/[^"]+)"/g)) {
        expect((await browser.get(asset[1]!)).status, asset[1]).toBe(200);
      }
    } finally {
      await site.close();
    }
  });
});

describe('flood guards', () => {
  it('answers a flood of page views from one address with a 429 page', async () => {
    // Threat: the CPU (a visitor's form no longer costs any stored state: anonymous-visitors.test.ts).
    const site = await createTestApp({ requestsPerMinute: 5 });
    try {
      const browser = createBrowser(site.app);
      for (let i = 0; i < 5; i += 1) expect((await browser.get('/login')).status).toBe(200);
      const flooded = await browser.get('/login');
      expectPage(flooded, 429, /Too many requests from your address/);
      expect(flooded.headers['retry-after']).toBe('60');
    } finally {
      await site.close();
    }
  });
});
