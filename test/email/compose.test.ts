import { describe, expect, it } from 'vitest';
import { createEmailComposer } from '../../src/email/compose.js';

const site = { name: 'Keyhole', publicUrl: 'https://keyhole.example' };
const { composeEmail } = createEmailComposer(site);

/** Every URL the HTML names: in attributes (href, src, CSS url()) and written out as text. */
function urlsIn(html: string): string[] {
  const inAttributes = [...html.matchAll(/\b(?:href|src|srcset|background|action)\s*=\s*"([^"]*)"/gi)].map(
    (match) => match[1]!,
  );
  const inCss = [...html.matchAll(/url\(([^)]*)\)/gi)].map((match) => match[1]!);
  const written = [...html.matchAll(/(?:https?:)?\/\/[^\s"'<>)]+/gi)].map((match) => match[0]);
  return [...inAttributes, ...inCss, ...written].map((url) => url.replace(/&amp;/g, '&'));
}

describe('composeEmail', () => {
  it('writes the paragraphs as plain text and as simple HTML, and names the site in both', () => {
    const email = composeEmail({
      to: 'ada@example.com',
      subject: 'Your Keyhole password was changed',
      paragraphs: ['Your password was changed just now.', 'If this was not you, reset it at once.'],
    });
    expect(email.to).toBe('ada@example.com');
    expect(email.subject).toBe('Your Keyhole password was changed');
    expect(email.text).toBe(
      'Your password was changed just now.\n\nIf this was not you, reset it at once.\n\n-- \nSent by Keyhole · keyhole.example\n',
    );
    expect(email.html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(email.html).toContain('<title>Your Keyhole password was changed</title>');
    expect(email.html).toMatch(/<p style="[^"]*">Your password was changed just now\.<\/p>/);
    expect(email.html).toMatch(/<p style="[^"]*">If this was not you, reset it at once\.<\/p>/);
    expect(email.html).toContain('Sent by Keyhole · keyhole.example');
  });

  it('builds the link on PUBLIC_URL and shows it whole, as a button and as text', () => {
    const email = composeEmail({
      to: 'ada@example.com',
      subject: 'Reset your Keyhole password',
      paragraphs: ['Someone asked to reset the password of your account.'],
      link: { label: 'Choose a new password', path: '/reset/abc123?step=1&x=2' },
    });
    const url = 'https://keyhole.example/reset/abc123?step=1&x=2';
    expect(email.text).toContain(`\n\nChoose a new password:\n${url}\n\n`);
    expect(email.html).toMatch(
      /<a href="https:\/\/keyhole\.example\/reset\/abc123\?step=1&amp;x=2" style="[^"]*">Choose a new password<\/a>/,
    );
    expect(email.html).toContain(
      'copy this address into your browser:<br>https://keyhole.example/reset/abc123?step=1&amp;x=2',
    );
  });

  it('names no URL in the HTML but the given link: no remote images, no tracking pixels or parameters', () => {
    // Threat: a remote image or a redirecting link tells a third party when, where and whether a
    // person opened a reset email, and a tracking parameter leaks the token into analytics.
    const withLink = composeEmail({
      to: 'ada@example.com',
      subject: 'Confirm your email',
      paragraphs: ['Confirm this address for your account.'],
      link: { label: 'Confirm', path: '/email/verify/token' },
    });
    expect(new Set(urlsIn(withLink.html))).toEqual(new Set(['https://keyhole.example/email/verify/token']));
    expect(withLink.html).not.toMatch(/<img|<link|<script|<iframe|<object|<form|utm_/i);
    expect(withLink.text).not.toMatch(/utm_/);
    const withoutLink = composeEmail({ to: 'ada@example.com', subject: 'Notice', paragraphs: ['Hello.'] });
    expect(urlsIn(withoutLink.html)).toEqual([]);
  });

  it('escapes hostile text in the paragraphs, the subject and the link label', () => {
    // Threat: a value a person chose (a username, say) written into the HTML part as markup.
    const hostile = `<img src="https://tracker.example.org/p.gif" onerror='alert(1)'> & <a href="https://evil.example.org">x</a>`;
    const email = composeEmail({
      to: 'ada@example.com',
      subject: `Hello ${hostile}`,
      paragraphs: [`Your username is ${hostile}.`],
      link: { label: hostile, path: '/account' },
    });
    expect(email.html).not.toMatch(/<img|<a href="https:\/\/evil|onerror='/);
    expect(email.html).toContain(
      '&lt;img src=&quot;https://tracker.example.org/p.gif&quot; onerror=&#39;alert(1)&#39;&gt; &amp; &lt;a href=&quot;https://evil.example.org&quot;&gt;x&lt;/a&gt;',
    );
    expect(email.html).toContain(`<title>Hello &lt;img`);
    // The plain-text part is text already: what the person chose, as they wrote it.
    expect(email.text).toContain(`Your username is ${hostile}.`);
    // Only the given link is a link.
    expect([...email.html.matchAll(/<a /g)]).toHaveLength(1);
  });

  it('keeps a line break inside a paragraph in the HTML too', () => {
    const email = composeEmail({
      to: 'ada@example.com',
      subject: 'Notice',
      paragraphs: ['First line\nsecond line'],
    });
    expect(email.html).toMatch(/>First line<br>second line<\/p>/);
  });

  it.each([
    ['another origin', 'https://evil.example.org/reset'],
    ['a scheme-relative URL', '//evil.example.org/reset'],
    ['a backslash trick', '/\\evil.example.org/reset'],
    ['a relative path', 'reset/abc'],
    ['a javascript: URL', 'javascript:alert(1)'],
  ])('refuses a link to %s', (_, path) => {
    expect(() =>
      composeEmail({ to: 'ada@example.com', subject: 'Reset', paragraphs: [], link: { label: 'Go', path } }),
    ).toThrow(/an email link must/);
  });
});
