import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import { PRODUCTION_ENV, createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
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
    // Threat: filling the session table (each new visitor's form makes a session) or the CPU.
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
