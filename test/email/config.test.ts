import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { PRODUCTION_ENV } from '../helpers/create-test-app.js';
import { problemsOf } from '../helpers/config.js';

const PASSWORD = 'pa ss@word/1';
const SMTP: Record<string, string> = {
  EMAIL_PROVIDER: 'smtp',
  EMAIL_FROM: 'Keyhole <no-reply@example.com>',
  SMTP_HOST: 'smtp.example.com',
};
/** Production with everything but email, which each test sets itself. */
const PRODUCTION_WITHOUT_EMAIL = Object.fromEntries(
  Object.entries({ ...PRODUCTION_ENV, SESSION_SECRET: 's'.repeat(32) }).filter(
    ([name]) => !/^(EMAIL_|SMTP_)/.test(name),
  ),
);

describe('EMAIL_PROVIDER', () => {
  it('is the console outside production, from Keyhole <no-reply@localhost> unless EMAIL_FROM says otherwise', () => {
    expect(loadConfig({}).email).toEqual({
      provider: 'console',
      from: { name: 'Keyhole', address: 'no-reply@localhost' },
    });
    expect(loadConfig({ EMAIL_FROM: 'help@example.org' }).email).toEqual({
      provider: 'console',
      from: { address: 'help@example.org' },
    });
  });

  it('refuses anything but console or smtp, by name', () => {
    expect(problemsOf({ EMAIL_PROVIDER: 'sendgrid' })).toEqual([
      expect.stringMatching(/^EMAIL_PROVIDER: must be console or smtp/),
    ]);
  });

  it('is required in production, which refuses the console', () => {
    // Threat: the console would print reset links and addresses into the server's log, and reach no one.
    expect(problemsOf(PRODUCTION_WITHOUT_EMAIL)).toEqual([
      expect.stringMatching(/^EMAIL_PROVIDER: is required when NODE_ENV=production: smtp/),
    ]);
    expect(problemsOf({ ...PRODUCTION_WITHOUT_EMAIL, EMAIL_PROVIDER: 'console' })).toEqual([
      'EMAIL_PROVIDER: console only prints emails to the terminal; in production choose smtp',
    ]);
    expect(loadConfig({ ...PRODUCTION_WITHOUT_EMAIL, ...SMTP }).email.provider).toBe('smtp');
  });
});

describe('the SMTP variables', () => {
  it('need a sender and a server with EMAIL_PROVIDER=smtp, each named', () => {
    expect(problemsOf({ EMAIL_PROVIDER: 'smtp' })).toEqual([
      expect.stringMatching(/^EMAIL_FROM: is required when EMAIL_PROVIDER=smtp/),
      'SMTP_HOST: is required when EMAIL_PROVIDER=smtp (or set SMTP_URL)',
    ]);
  });

  it('read the host, port, TLS and credentials, with port 587 by default and 465 with SMTP_SECURE', () => {
    expect(
      loadConfig({ ...SMTP, SMTP_PORT: '2525', SMTP_USER: 'mailer', SMTP_PASSWORD: ` ${PASSWORD} ` }).email,
    ).toEqual({
      provider: 'smtp',
      from: { name: 'Keyhole', address: 'no-reply@example.com' },
      smtp: {
        host: 'smtp.example.com',
        port: 2525,
        secure: false,
        requireTLS: false,
        auth: { user: 'mailer', password: ` ${PASSWORD} ` },
      },
    });
    expect(loadConfig(SMTP).email).toMatchObject({ smtp: { port: 587, secure: false } });
    expect(loadConfig({ ...SMTP, SMTP_SECURE: 'true' }).email).toMatchObject({
      smtp: { port: 465, secure: true },
    });
    expect(loadConfig(SMTP).email).not.toHaveProperty('smtp.auth');
  });

  it('read SMTP_URL instead: smtp:// or smtps://, with percent-encoded credentials', () => {
    const { SMTP_HOST: _, ...withoutHost } = SMTP;
    const encoded = encodeURIComponent(PASSWORD);
    expect(
      loadConfig({ ...withoutHost, SMTP_URL: `smtp://mailer:${encoded}@mail.example.com:2525` }).email,
    ).toEqual({
      provider: 'smtp',
      from: { name: 'Keyhole', address: 'no-reply@example.com' },
      smtp: {
        host: 'mail.example.com',
        port: 2525,
        secure: false,
        requireTLS: false,
        auth: { user: 'mailer', password: PASSWORD },
      },
    });
    expect(loadConfig({ ...withoutHost, SMTP_URL: 'smtps://mail.example.com' }).email).toMatchObject({
      smtp: { host: 'mail.example.com', port: 465, secure: true },
    });
    expect(loadConfig({ ...withoutHost, SMTP_URL: 'smtp://[::1]:25' }).email).toMatchObject({
      smtp: { host: '::1', port: 25 },
    });
  });

  it.each([
    ['not a URL', 'mail.example.com', /^SMTP_URL: must be a URL/],
    [
      'another scheme',
      'https://mail.example.com',
      /^SMTP_URL: must start with smtp:\/\/ \(STARTTLS\) or smtps:\/\//,
    ],
    ['no host', 'smtp://', /^SMTP_URL: must name the mail server’s host/],
    ['options', 'smtp://mail.example.com?pool=true', /^SMTP_URL: takes no path or \?options/],
    [
      'a user without a password',
      'smtp://mailer@mail.example.com',
      /^SMTP_URL: must carry both a user and a password/,
    ],
  ])('refuses an SMTP_URL with %s, without repeating it', (_, url, message) => {
    const problems = problemsOf({
      EMAIL_PROVIDER: 'smtp',
      EMAIL_FROM: 'no-reply@example.com',
      SMTP_URL: url,
    });
    expect(problems).toEqual([expect.stringMatching(message)]);
  });

  it('never repeats a password from a refused SMTP_URL', () => {
    // Threat: the start-up error is printed to the terminal and the logs.
    const problems = problemsOf({
      EMAIL_PROVIDER: 'smtp',
      EMAIL_FROM: 'no-reply@example.com',
      SMTP_URL: 'smtp://mailer:hunter2-secret@mail.example.com/inbox',
    });
    expect(problems).toEqual([expect.stringMatching(/^SMTP_URL: /)]);
    expect(problems.join('\n')).not.toContain('hunter2-secret');
  });

  it('refuses SMTP_HOST, SMTP_PORT or SMTP_SECURE beside SMTP_URL, and a second set of credentials', () => {
    const withUrl: Record<string, string> = { ...SMTP, SMTP_URL: 'smtp://mailer:secret@mail.example.com' };
    expect(problemsOf({ ...withUrl, SMTP_PORT: '25', SMTP_SECURE: 'false' })).toEqual([
      'SMTP_HOST: leave it empty when SMTP_URL is set (the URL says it)',
      'SMTP_PORT: leave it empty when SMTP_URL is set (the URL says it)',
      'SMTP_SECURE: leave it empty when SMTP_URL is set (the URL says it)',
    ]);
    const { SMTP_HOST: _, ...urlOnly } = withUrl;
    expect(problemsOf({ ...urlOnly, SMTP_USER: 'other', SMTP_PASSWORD: 'other' })).toEqual([
      'SMTP_USER: leave it empty when SMTP_URL carries a user and password',
      'SMTP_PASSWORD: leave it empty when SMTP_URL carries a user and password',
    ]);
    // A URL without credentials takes them from SMTP_USER and SMTP_PASSWORD.
    expect(
      loadConfig({ ...urlOnly, SMTP_URL: 'smtp://mail.example.com', SMTP_USER: 'u', SMTP_PASSWORD: 'p' })
        .email,
    ).toMatchObject({ smtp: { auth: { user: 'u', password: 'p' } } });
  });

  it('want SMTP_USER and SMTP_PASSWORD together', () => {
    expect(problemsOf({ ...SMTP, SMTP_USER: 'mailer' })).toEqual([
      'SMTP_PASSWORD: is required when SMTP_USER is set',
    ]);
    expect(problemsOf({ ...SMTP, SMTP_PASSWORD: 'secret' })).toEqual([
      'SMTP_USER: is required when SMTP_PASSWORD is set',
    ]);
  });

  it.each(['abc', '0', '65536', '25.5'])('refuses SMTP_PORT=%s', (port) => {
    expect(problemsOf({ ...SMTP, SMTP_PORT: port })).toEqual([
      'SMTP_PORT: must be a port number, 1 to 65535',
    ]);
  });

  it('refuses an SMTP_SECURE that is not true or false, and a host that is not one', () => {
    expect(problemsOf({ ...SMTP, SMTP_SECURE: 'yes' })).toEqual([
      expect.stringMatching(/^SMTP_SECURE: must be true \(TLS from the start, port 465\) or false/),
    ]);
    expect(problemsOf({ ...SMTP, SMTP_HOST: 'smtp://smtp.example.com' })).toEqual([
      'SMTP_HOST: must be a host name or address, such as smtp.example.com',
    ]);
  });

  it.each([
    ['not an address', 'Keyhole'],
    ['two addresses', 'a@example.com, b@example.org'],
    ['a header line smuggled in', 'Keyhole <no-reply@example.com>\r\nBcc: list@example.org'],
    ['an unclosed name', 'Keyhole <no-reply@example.com'],
    ['a quote inside the name', 'Key"hole <no-reply@example.com>'],
  ])('refuses EMAIL_FROM with %s', (_, from) => {
    expect(problemsOf({ ...SMTP, EMAIL_FROM: from })).toEqual([
      expect.stringMatching(/^EMAIL_FROM: must be one address, such as no-reply@example.com or Keyhole/),
    ]);
  });

  it('reads EMAIL_FROM as a bare address, or a name, quoted or not, and its address', () => {
    const fromOf = (from: string) => loadConfig({ ...SMTP, EMAIL_FROM: from }).email.from;
    expect(fromOf('no-reply@example.com')).toEqual({ address: 'no-reply@example.com' });
    expect(fromOf('"Keyhole, the site" <no-reply@example.com>')).toEqual({
      name: 'Keyhole, the site',
      address: 'no-reply@example.com',
    });
    expect(fromOf('<no-reply@example.com>')).toEqual({ address: 'no-reply@example.com' });
  });
});

describe('STARTTLS in production', () => {
  // Threat: without requireTLS, anyone on the path who strips the server's STARTTLS offer reads the
  // SMTP password and every reset link in clear.
  const production = (env: Record<string, string>) =>
    loadConfig({
      ...PRODUCTION_WITHOUT_EMAIL,
      EMAIL_PROVIDER: 'smtp',
      EMAIL_FROM: 'no-reply@example.com',
      ...env,
    });

  it('is required for a plain connection to another machine', () => {
    expect(production({ SMTP_HOST: 'smtp.example.com' }).email).toMatchObject({
      smtp: { secure: false, requireTLS: true },
    });
    expect(production({ SMTP_URL: 'smtp://192.0.2.25:587' }).email).toMatchObject({
      smtp: { requireTLS: true },
    });
  });

  it('is not asked for when TLS starts at once (SMTP_SECURE or smtps://)', () => {
    expect(production({ SMTP_HOST: 'smtp.example.com', SMTP_SECURE: 'true' }).email).toMatchObject({
      smtp: { secure: true, requireTLS: false },
    });
    expect(production({ SMTP_URL: 'smtps://smtp.example.com' }).email).toMatchObject({
      smtp: { secure: true, requireTLS: false },
    });
  });

  it.each(['localhost', '127.0.0.1', '127.0.0.53', '::1', '[::1]'])(
    'is not asked of a relay on this machine (%s)',
    (host) => {
      expect(production({ SMTP_HOST: host }).email).toMatchObject({ smtp: { requireTLS: false } });
    },
  );

  it('is left to the server outside production (opportunistic STARTTLS)', () => {
    expect(loadConfig({ ...SMTP }).email).toMatchObject({ smtp: { requireTLS: false } });
  });
});
