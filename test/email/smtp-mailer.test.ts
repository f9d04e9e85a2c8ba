import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createEmailComposer } from '../../src/email/compose.js';
import { createMailer } from '../../src/email/index.js';
import { MailerError, type Mailer } from '../../src/email/mailer.js';
import type { SmtpTimeouts } from '../../src/email/smtp-mailer.js';
import { PRODUCTION_ENV, createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { startTestSmtpServer, unusedPort, type TestSmtpServer } from '../helpers/smtp-server.js';

const PASSWORD = 'correct horse battery staple';
const FROM = 'Keyhole <no-reply@example.com>';

const { composeEmail } = createEmailComposer({ name: 'Keyhole', publicUrl: 'https://keyhole.example' });
const message = composeEmail({
  to: 'ada@example.com',
  subject: 'Reset your Keyhole password',
  paragraphs: ['Someone asked to reset the password of your account.'],
  link: { label: 'Choose a new password', path: '/reset/abc123' },
});

/** A mailer built as the site builds it: from the environment, through loadConfig and createMailer. */
function mailerFor(env: Record<string, string>, timeouts?: Partial<SmtpTimeouts>): Mailer {
  const config = loadConfig({ EMAIL_PROVIDER: 'smtp', EMAIL_FROM: FROM, ...env });
  return createMailer({
    settings: config.email,
    print: () => {
      throw new Error('the SMTP mailer printed');
    },
    timeouts,
  });
}

async function failureOf(send: Promise<void>): Promise<MailerError> {
  const error = await send.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(MailerError);
  return error as MailerError;
}

/** The whole error as a logger would print it: message, stack, every property and cause. */
const everythingIn = (error: unknown) =>
  `${inspect(error, { depth: 10, showHidden: true })}\n${JSON.stringify(error)}`;

describe('the SMTP mailer', () => {
  let server: TestSmtpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('delivers the text and the HTML part, from EMAIL_FROM, to the recipient, with the subject', async () => {
    server = await startTestSmtpServer();
    await mailerFor({ SMTP_URL: server.url }).send(message);

    expect(server.messages).toHaveLength(1);
    const received = server.messages[0]!;
    expect(received.envelope).toEqual({ from: 'no-reply@example.com', to: ['ada@example.com'] });
    expect(received.from).toEqual([{ name: 'Keyhole', address: 'no-reply@example.com' }]);
    expect(received.to).toEqual([{ name: '', address: 'ada@example.com' }]);
    expect(received.subject).toBe('Reset your Keyhole password');
    expect(received.text).toBe(message.text);
    expect(received.html).toBe(message.html);
    expect(received.raw).toMatch(/^Content-Type: multipart\/alternative;/m);
    expect(received.headers.get('auto-submitted')).toBe('auto-generated');
    expect(received.authenticatedUser).toBeUndefined();
  });

  it('logs in with SMTP_USER and SMTP_PASSWORD, or the credentials in SMTP_URL', async () => {
    server = await startTestSmtpServer({ auth: { user: 'mailer', password: PASSWORD } });
    await mailerFor({
      SMTP_HOST: server.host,
      SMTP_PORT: String(server.port),
      SMTP_USER: 'mailer',
      SMTP_PASSWORD: PASSWORD,
    }).send(message);
    await mailerFor({
      SMTP_URL: `smtp://mailer:${encodeURIComponent(PASSWORD)}@${server.host}:${server.port}`,
    }).send(message);
    expect(server.messages.map((received) => received.authenticatedUser)).toEqual(['mailer', 'mailer']);
  });

  it('says the server refused the login, without the password, when the password is wrong', async () => {
    // Threat: the error is logged, and the log is read by more people than the SMTP account.
    server = await startTestSmtpServer({ auth: { user: 'mailer', password: 'another password' } });
    const error = await failureOf(
      mailerFor({
        SMTP_URL: `smtp://mailer:${encodeURIComponent(PASSWORD)}@${server.host}:${server.port}`,
      }).send(message),
    );
    expect(error.kind).toBe('auth');
    expect(error.message).toBe(
      `smtp: could not send through 127.0.0.1:${server.port}: the server refused the login (EAUTH 535)`,
    );
    const printed = everythingIn(error);
    expect(printed).not.toContain(PASSWORD);
    expect(printed).not.toContain(encodeURIComponent(PASSWORD));
    expect(printed).not.toContain(Buffer.from(`\0mailer\0${PASSWORD}`).toString('base64'));
    expect(server.messages).toEqual([]);
  });

  it('says a login is needed when the server asks for one and none is configured', async () => {
    server = await startTestSmtpServer({ auth: { user: 'mailer', password: PASSWORD } });
    const error = await failureOf(mailerFor({ SMTP_URL: server.url }).send(message));
    expect(error.kind).toBe('auth');
    expect(error.message).toMatch(/the server wants a login \(SMTP_USER and SMTP_PASSWORD\)/);
  });

  it('fails at once, with a clear error and no password, when nothing listens on the port', async () => {
    const port = await unusedPort();
    const started = Date.now();
    const error = await failureOf(
      mailerFor({ SMTP_URL: `smtp://mailer:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}` }).send(
        message,
      ),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error.kind).toBe('unavailable');
    expect(error.message).toBe(
      `smtp: could not send through 127.0.0.1:${port}: no working connection to the server (ESOCKET ECONNREFUSED)`,
    );
    expect(everythingIn(error)).not.toContain(PASSWORD);
  });

  it('gives up within seconds on a server that accepts the connection and never answers', async () => {
    // A dead mail host must not hold a person's page: the default deadlines, not the test's.
    server = await startTestSmtpServer({ hang: 'greeting' });
    const started = Date.now();
    const error = await failureOf(
      mailerFor({ SMTP_URL: server.url, SMTP_USER: 'mailer', SMTP_PASSWORD: PASSWORD }).send(message),
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(2500);
    expect(elapsed).toBeLessThan(6000);
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/: no answer in time \(ETIMEDOUT\)$/);
    expect(everythingIn(error)).not.toContain(PASSWORD);
  });

  it('gives up on the whole send at its deadline, even while the server holds the message', async () => {
    server = await startTestSmtpServer({ hang: 'data' });
    const started = Date.now();
    const error = await failureOf(mailerFor({ SMTP_URL: server.url }, { sendMs: 500 }).send(message));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/: no answer within 0.5 seconds \(EABORT\)$/);
  });

  it('refuses to send in clear when STARTTLS is required and the server does not offer it', async () => {
    // Threat: whoever strips STARTTLS from the server's answer would read the login and the links.
    server = await startTestSmtpServer({ auth: { user: 'mailer', password: PASSWORD } });
    const mailer = createMailer({
      settings: {
        provider: 'smtp',
        from: { address: 'no-reply@example.com' },
        smtp: {
          host: server.host,
          port: server.port,
          secure: false,
          requireTLS: true,
          auth: { user: 'mailer', password: PASSWORD },
        },
      },
      print: () => {},
    });
    const error = await failureOf(mailer.send(message));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(
      /: TLS failed \(no STARTTLS offered, or a certificate that is not trusted\) \(ETLS 500\)$/,
    );
    expect(server.messages).toEqual([]);
  });

  it('tells a refused recipient (5xx) from a server that asks to try later (4xx)', async () => {
    server = await startTestSmtpServer({ refuseRecipientsWith: 550 });
    const refused = await failureOf(mailerFor({ SMTP_URL: server.url }).send(message));
    expect(refused.kind).toBe('rejected');
    expect(refused.message).toMatch(/: the server refused the message \(EENVELOPE 550\)$/);
    await server.close();

    server = await startTestSmtpServer({ refuseRecipientsWith: 451 });
    const later = await failureOf(mailerFor({ SMTP_URL: server.url }).send(message));
    expect(later.kind).toBe('unavailable');
    expect(later.message).toMatch(/: the server asked to try again later \(EENVELOPE 451\)$/);
  });

  it.each([
    ['a list of recipients', { to: 'ada@example.com, eve@example.org' }],
    ['a name with the address', { to: 'Ada <ada@example.com>' }],
    ['a header line in the subject', { subject: 'Hello\r\nBcc: eve@example.org' }],
  ])('refuses %s before connecting', async (_, change) => {
    // Threat: one message carried to a second person, or a Bcc header smuggled in.
    server = await startTestSmtpServer();
    const error = await failureOf(mailerFor({ SMTP_URL: server.url }).send({ ...message, ...change }));
    expect(error.kind).toBe('invalid_message');
    expect(server.messages).toEqual([]);
  });
});

describe('createTestApp with EMAIL_PROVIDER=smtp', () => {
  let server: TestSmtpServer | undefined;
  let site: TestApp | undefined;
  afterEach(async () => {
    await site?.close();
    await server?.close();
    site = server = undefined;
  });

  it('sends the app’s emails through the SMTP server, and neither prints nor lists them', async () => {
    server = await startTestSmtpServer({ auth: { user: 'mailer', password: PASSWORD } });
    site = await createTestApp({
      env: {
        EMAIL_PROVIDER: 'smtp',
        SMTP_HOST: server.host,
        SMTP_PORT: String(server.port),
        SMTP_USER: 'mailer',
        SMTP_PASSWORD: PASSWORD,
        EMAIL_FROM: FROM,
      },
    });
    expect(site.mailer.name).toBe('smtp');
    await site.mailer.send(message);
    expect(server.messages.map(({ subject, authenticatedUser }) => ({ subject, authenticatedUser }))).toEqual(
      [{ subject: 'Reset your Keyhole password', authenticatedUser: 'mailer' }],
    );
    expect(site.printedEmails).toEqual([]);
    expect(site.outbox.listEmails()).toEqual([]);
  });

  it('sends through SMTP in production, to a relay on this machine without STARTTLS', async () => {
    server = await startTestSmtpServer();
    site = await createTestApp({ env: { ...PRODUCTION_ENV, SMTP_URL: server.url } });
    await site.mailer.send(message);
    expect(server.messages.map((received) => received.from)).toEqual([
      [{ name: 'Keyhole', address: 'no-reply@example.com' }],
    ]);
  });
});
