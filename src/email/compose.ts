import type { EmailMessage } from './mailer.js';

/**
 * The site's emails, in one shape: a few plain paragraphs, at most one link to a page of this
 * site, and a footer naming the site. The HTML part says the same as the text, escaped, with inline
 * styles only: no remote images, no tracking pixels, no tracking parameters, no other URL.
 */

export interface EmailSite {
  /** SITE_NAME. */
  name: string;
  /** config.publicUrl (PUBLIC_URL): an origin without a trailing slash. */
  publicUrl: string;
}

export interface EmailContent {
  to: string;
  subject: string;
  /** Plain text, one string per paragraph; never HTML (it is escaped). */
  paragraphs: string[];
  /** A page of this site: its path (and query), built on PUBLIC_URL. */
  link?: { label: string; path: string };
}

export interface EmailComposer {
  composeEmail(content: EmailContent): EmailMessage;
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character]!);
}

const STYLE = {
  body: "margin:0;padding:24px;background:#ffffff;color:#1a1a1a;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5",
  paragraph: 'margin:0 0 16px',
  button:
    'display:inline-block;padding:10px 18px;border-radius:6px;background:#1d4ed8;color:#ffffff;font-weight:600;text-decoration:none',
  small: 'margin:0 0 16px;font-size:14px;color:#555555',
};

/**
 * The link's absolute URL on PUBLIC_URL. Only a path is accepted: an email naming another
 * origin, or one a caller's value could point elsewhere ("//evil.example"), is a bug.
 */
function linkOnSite(publicUrl: string, path: string): string {
  if (!path.startsWith('/') || path.startsWith('//') || /[\\\s]/.test(path)) {
    throw new Error('an email link must be a path on this site, such as /reset/…');
  }
  const url = new URL(path, `${publicUrl}/`);
  if (url.origin !== new URL(publicUrl).origin) throw new Error('an email link must stay on this site');
  return url.href;
}

const htmlParagraph = (text: string, style = STYLE.paragraph) =>
  `<p style="${style}">${escapeHtml(text).replace(/\r?\n/g, '<br>')}</p>`;

export function createEmailComposer(site: EmailSite): EmailComposer {
  const siteHost = new URL(site.publicUrl).host;
  const footer = `Sent by ${site.name} · ${siteHost}`;
  return {
    composeEmail({ to, subject, paragraphs, link }) {
      const url = link ? linkOnSite(site.publicUrl, link.path) : undefined;

      const textParts = [...paragraphs];
      if (link && url) textParts.push(`${link.label}:\n${url}`);
      textParts.push(`-- \n${footer}`);
      const text = `${textParts.join('\n\n')}\n`;

      const htmlParts = paragraphs.map((paragraph) => htmlParagraph(paragraph));
      if (link && url) {
        const href = escapeHtml(url);
        htmlParts.push(
          `<p style="margin:24px 0"><a href="${href}" style="${STYLE.button}">${escapeHtml(link.label)}</a></p>`,
          `<p style="${STYLE.small}">If the button does not work, copy this address into your browser:<br>${href}</p>`,
        );
      }
      htmlParts.push(htmlParagraph(footer, `${STYLE.small};margin-top:32px`));
      const html = [
        '<!doctype html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        `<title>${escapeHtml(subject)}</title>`,
        '</head>',
        `<body style="${STYLE.body}">`,
        ...htmlParts,
        '</body>',
        '</html>',
        '',
      ].join('\n');

      return { to, subject, text, html };
    },
  };
}
