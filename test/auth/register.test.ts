import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { GOOD_PASSWORD } from '../helpers/flows.js';

describe('POST /register', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  const submit = (fields: Record<string, string>) =>
    createBrowser(site.app).submit('/register', '/register', {
      username: 'carol',
      password: GOOD_PASSWORD,
      phone: '+1 202 555 0123',
      channel: 'sms',
      ...fields,
    });

  it('stores the number in E.164 and the password as an argon2id hash at OWASP’s minimum', async () => {
    expectRedirect(await submit({}), '/verify');
    const user = (await site.users.findByUsername('carol'))!;
    expect(user.phone).toBe('+12025550123');
    expect(user.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(await site.audit.recent()).toContainEqual(
      expect.objectContaining({ type: 'account_created', username: 'carol' }),
    );
  });

  it('reads a national number with its country', async () => {
    expectRedirect(await submit({ phone: '(202) 555-0177', country: 'US' }), /^\/verify$/);
    expect((await site.users.findByUsername('carol'))!.phone).toBe('+12025550177');
  });

  it('asks for the country when a national number comes without one', async () => {
    expectPage(await submit({ phone: '202 555 0177' }), 400, /Choose the country of the number/);
  });

  it.each(['+1 202 555', '12345', '+999 1234 5678', 'call me maybe'])(
    'refuses the phone number %j with a form error',
    async (phone) => {
      const res = await submit({ phone });
      expectPage(res, 400);
      expect(res.text).toMatch(/phone number/i);
      expect(await site.users.findByUsername('carol')).toBeNull();
    },
  );

  it('refuses one of the most common passwords in plain words', async () => {
    expectPage(await submit({ password: 'password1' }), 400, /one of the most common/);
    expectPage(await submit({ password: 'iloveyou1' }), 400, /one of the most common/);
  });

  it('accepts long passphrases with spaces and symbols, and refuses short ones', async () => {
    expectPage(await submit({ password: 'short1!' }), 400, /at least 8 characters/);
    expectRedirect(
      await submit({ password: 'a'.repeat(20) + ' ünïcødé ✓ passphrase ' + 'b'.repeat(40) }),
      /^\/verify$/,
    );
  });

  it('refuses a taken username without caring about case', async () => {
    expectRedirect(await submit({}), /^\/verify$/);
    expectPage(await submit({ username: 'CAROL' }), 409, /That username is taken/);
    // Full-width letters are the same name after NFKC: a look-alike account is refused too.
    expectPage(await submit({ username: 'ｃａｒｏｌ' }), 409, /That username is taken/);
  });

  it('never shows the password again on the re-displayed form', async () => {
    const res = await submit({ password: 'my secret but common?', phone: 'nonsense' });
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('my secret but common?');
  });

  it('lists the errors at the top, linked to their fields', async () => {
    const res = await submit({ username: '', phone: '' });
    expect(res.text).toMatch(/role="alert"/);
    expect(res.text).toMatch(/<a href="#username">/);
    expect(res.text).toMatch(/<a href="#phone">/);
    expect(res.text).toMatch(/id="username" name="username" aria-invalid="true"/);
  });
});

describe('bad input anywhere gets the form back with a 400, never a 500', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  const cases: [string, string, Record<string, string | string[]>][] = [
    ['an empty login form', '/login', {}],
    ['a username that is a list', '/login', { username: ['a', 'b'], password: 'x' }],
    ['a very long username', '/login', { username: 'u'.repeat(5000), password: 'x' }],
    ['a username with a control character', '/login', { username: 'bob\u0000', password: 'x' }],
    ['a username with a bidi override', '/login', { username: 'bob\u202e', password: 'x' }],
    ['an unknown channel', '/login', { username: 'bob', password: 'x', channel: 'fax' }],
    ['an empty registration', '/register', {}],
    [
      'a registration with emoji in the username',
      '/register',
      { username: 'bob😀', password: GOOD_PASSWORD, phone: '+12025550100', channel: 'sms' },
    ],
    [
      'a registration with an odd country',
      '/register',
      { username: 'bob', password: GOOD_PASSWORD, phone: '2025550100', country: '<script>', channel: 'sms' },
    ],
    [
      'a registration with a lone surrogate',
      '/register',
      { username: 'bob\ud800', password: GOOD_PASSWORD, phone: '+12025550100', channel: 'sms' },
    ],
  ];

  it.each(cases)('%s', async (_name, path, fields) => {
    const browser = createBrowser(site.app);
    const page = await browser.get(path);
    const token = page.text.match(/name="_csrf" value="([^"]+)"/)![1]!;
    const res = await browser.agent
      .post(path)
      .type('form')
      .send({ ...fields, _csrf: token });
    expectPage(res, 400);
    expect(res.text).toMatch(/There is a problem/);
  });
});

describe('the error summary', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp();
  });
  afterEach(() => site.close());

  it('reads the first problem in the heading that takes the focus, and counts the others', async () => {
    const browser = createBrowser(site.app);
    const res = await browser.submit('/register', '/register', { username: 'bo', phone: '+12025550100' });
    expectPage(res, 400);
    const heading = res.text.match(/<h2 id="error-summary-title"[^>]*>([^<]*)<\/h2>/);
    expect(heading?.[0]).toContain('tabindex="-1" data-error-summary');
    expect(heading?.[1]).toBe(
      'There is a problem: Choose a username of at least 3 characters. (and 2 more below)',
    );
    expect(res.text).toMatch(/<title>Error: /);
  });
});
