import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmailComposer } from '../../src/email/compose.js';
import { MailerError } from '../../src/email/mailer.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, visibleText } from '../helpers/expectations.js';
import { register, submitPassword } from '../helpers/flows.js';

/** The emails /dev/outbox lists, top to bottom, as a person reads them. */
function emailsOnPage(html: string) {
  return [...html.matchAll(/<li class="outbox__item" data-outbox-email>([\s\S]*?)<\/li>/g)].map(
    ([, item]) => ({
      to: /data-outbox-email-to>([^<]*)</.exec(item!)?.[1],
      time: /<time datetime="([^"]+)">/.exec(item!)?.[1],
      subject: /data-outbox-email-subject>([^<]*)</.exec(item!)?.[1],
      textHtml: /data-outbox-email-text>([\s\S]*?)<\/p>/.exec(item!)?.[1] ?? '',
    }),
  );
}

describe('the console mailer', () => {
  let site: TestApp | undefined;
  afterEach(async () => {
    await site?.close();
    site = undefined;
  });

  const composerFor = (site: TestApp) =>
    createEmailComposer({ name: 'Keyhole', publicUrl: site.config.publicUrl }).composeEmail;

  it('is the default outside production, and prints each email readably: recipient, subject, then the text', async () => {
    site = await createTestApp();
    expect(site.mailer.name).toBe('console');
    await site.mailer.send(
      composerFor(site)({
        to: 'ada@example.com',
        subject: 'Confirm your email',
        paragraphs: ['Confirm this address for your Keyhole account.'],
        link: { label: 'Confirm', path: '/email/verify/abc' },
      }),
    );
    expect(site.printedEmails).toEqual([
      [
        'Email to ada@example.com: Confirm your email',
        '    Confirm this address for your Keyhole account.',
        '',
        '    Confirm:',
        '    http://localhost:3000/email/verify/abc',
        '',
        '    -- ',
        '    Sent by Keyhole · localhost:3000',
        '',
      ].join('\n'),
    ]);
    // Codes keep their own lines: an email is never read as one.
    expect(site.printed).toEqual([]);
  });

  it('shows each email in /dev/outbox beside the codes, newest first, with recipient, subject, time and text', async () => {
    site = await createTestApp();
    const browser = createBrowser(site.app);
    await submitPassword(browser, await register(browser), 'sms');
    const compose = composerFor(site);
    await site.mailer.send(
      compose({ to: 'ada@example.com', subject: 'First notice', paragraphs: ['Your password was changed.'] }),
    );
    site.clock.advance(60_000);
    await site.mailer.send(
      compose({
        to: 'grace@example.org',
        subject: 'Reset your password',
        paragraphs: ['Someone asked to reset your password.'],
        link: { label: 'Choose a new password', path: '/reset/abc123' },
      }),
    );

    const page = await request(site.app).get('/dev/outbox');
    expectPage(page, 200, /<h2 id="outbox-emails-title">Emails<\/h2>/);
    expect(page.headers['cache-control']).toBe('no-store');
    // The code is still listed, in its own section.
    expect([...page.text.matchAll(/data-outbox-text>([^<]+)</g)].map((match) => match[1])).toEqual([
      expect.stringMatching(/^Keyhole code: \d{6}\n\n@localhost #\d{6}$/),
      expect.stringMatching(/^Keyhole sign-up code: \d{6}\n\n@localhost #\d{6}$/),
    ]);
    const emails = emailsOnPage(page.text);
    expect(emails.map(({ to, subject, time }) => ({ to, subject, time }))).toEqual([
      { to: 'grace@example.org', subject: 'Reset your password', time: site.clock.now().toISOString() },
      {
        to: 'ada@example.com',
        subject: 'First notice',
        time: new Date(site.clock.now().getTime() - 60_000).toISOString(),
      },
    ]);
    // The text as sent, its link shown whole and clickable.
    expect(emails[0]!.textHtml).toContain(
      'Choose a new password:\n<a href="http://localhost:3000/reset/abc123">http://localhost:3000/reset/abc123</a>',
    );
    expect(visibleText(emails[0]!.textHtml)).toBe(
      'Someone asked to reset your password. Choose a new password: http://localhost:3000/reset/abc123 -- Sent by Keyhole · localhost:3000',
    );
  });

  it('escapes what an email says in /dev/outbox, and links only http(s) addresses', async () => {
    // Threat: a username or address a visitor chose, echoed into an email, must not become markup
    // on a page the developer opens.
    site = await createTestApp();
    await site.mailer.send({
      to: 'ada@example.com',
      subject: '<script>alert(1)</script>',
      text: 'Hello <img src=x onerror=alert(1)> javascript:alert(1) https://keyhole.example/a?b=1&c="2"',
      html: '<p>unused</p>',
    });
    const page = await request(site.app).get('/dev/outbox');
    const [email] = emailsOnPage(page.text);
    expect(email!.subject).toBe('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(email!.textHtml).toBe(
      'Hello &lt;img src=x onerror=alert(1)&gt; javascript:alert(1) <a href="https://keyhole.example/a?b=1&amp;c=">https://keyhole.example/a?b=1&amp;c=</a>&#34;2&#34;',
    );
  });

  it('refuses a recipient that is not one address, and neither prints nor lists it', async () => {
    site = await createTestApp();
    const error = await site.mailer
      .send({ to: 'ada@example.com, eve@example.org', subject: 'Hello', text: 'Hi', html: '<p>Hi</p>' })
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(MailerError);
    expect((error as MailerError).kind).toBe('invalid_message');
    expect(site.printedEmails).toEqual([]);
    expect(site.outbox.listEmails()).toEqual([]);
  });
});
