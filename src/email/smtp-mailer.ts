import type { Transporter } from 'nodemailer';
import type { Mailbox } from './address.js';
import type { SmtpSettings } from './config.js';
import { MailerError, checkMessage, type Mailer, type MailerErrorKind } from './mailer.js';

/**
 * Short deadlines: a page that sends an email waits for it, so a mail host that is down or stuck
 * must cost a few seconds, never the minutes nodemailer allows by default (2 minutes to connect,
 * 30 seconds for the greeting, 10 minutes of silence).
 */
export interface SmtpTimeouts {
  /** To open the TCP (or TLS) connection, DNS included. */
  connectionMs: number;
  /** For the server's first line once connected. */
  greetingMs: number;
  /** Of silence at any later point. */
  socketMs: number;
  /** For the whole send, however the server trickles its answers. */
  sendMs: number;
}

export const SMTP_TIMEOUTS: SmtpTimeouts = {
  connectionMs: 3000,
  greetingMs: 3000,
  socketMs: 5000,
  sendMs: 10_000,
};

export interface SmtpMailerOptions {
  smtp: SmtpSettings;
  from: Mailbox;
  timeouts?: Partial<SmtpTimeouts>;
}

const NAME = 'smtp';

/** A short, safe token from a transport error (ECONNREFUSED...), never its free-text message. */
function networkCode(error: { message?: unknown }): string | undefined {
  const message = typeof error.message === 'string' ? error.message : '';
  return /\b(E[A-Z]{3,20})\b/.exec(message)?.[1];
}

/**
 * nodemailer's error as a MailerError: the kind, a phrase and the codes, nothing else. Its
 * message can quote the server's replies and its `command` the SMTP dialogue, so neither is kept.
 */
function toMailerError(error: unknown, where: string, timeouts: SmtpTimeouts): MailerError {
  const details = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    responseCode?: unknown;
    message?: unknown;
  };
  const code =
    typeof details.code === 'string' && /^E[A-Z]{2,20}$/.test(details.code) ? details.code : 'ERROR';
  const reply = typeof details.responseCode === 'number' ? details.responseCode : undefined;
  const fail = (kind: MailerErrorKind, phrase: string, codes = [code, reply].filter(Boolean).join(' ')) =>
    new MailerError(kind, NAME, `could not send through ${where}: ${phrase} (${codes})`);

  if (code === 'EAUTH' || code === 'ENOAUTH') return fail('auth', 'the server refused the login');
  if (reply === 530) return fail('auth', 'the server wants a login (SMTP_USER and SMTP_PASSWORD)');
  if (code === 'EABORT') return fail('unavailable', `no answer within ${timeouts.sendMs / 1000} seconds`);
  if (code === 'ETIMEDOUT') return fail('unavailable', 'no answer in time');
  if (code === 'ETLS') {
    return fail('unavailable', 'TLS failed (no STARTTLS offered, or a certificate that is not trusted)');
  }
  if (code === 'EDNS') return fail('unavailable', 'the host name did not resolve');
  if (reply !== undefined && reply >= 500) return fail('rejected', 'the server refused the message');
  if (reply !== undefined && reply >= 400) return fail('unavailable', 'the server asked to try again later');
  const network = networkCode(details);
  return fail(
    'unavailable',
    'no working connection to the server',
    [code, network].filter(Boolean).join(' '),
  );
}

/** Delivers through one SMTP server, one connection per message (the site sends a few notices). */
export function createSmtpMailer(options: SmtpMailerOptions): Mailer {
  const { smtp, from } = options;
  const timeouts = { ...SMTP_TIMEOUTS, ...options.timeouts };
  const where = `${smtp.host.includes(':') ? `[${smtp.host}]` : smtp.host}:${smtp.port}`;
  // nodemailer loads at the first email, not at start: a site that sends none (or not yet) does
  // not pay for it in `npm start` (issue 10's start-up goal).
  let transport: Promise<Transporter> | undefined;
  const transportOf = () =>
    (transport ??= import('nodemailer').then(({ default: nodemailer }) => createTransport(nodemailer)));
  const createTransport = (nodemailer: typeof import('nodemailer').default) =>
    nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTLS,
      auth: smtp.auth ? { user: smtp.auth.user, pass: smtp.auth.password } : undefined,
      connectionTimeout: timeouts.connectionMs,
      dnsTimeout: timeouts.connectionMs,
      greetingTimeout: timeouts.greetingMs,
      socketTimeout: timeouts.socketMs,
      // Messages are built from the site's own strings: nothing may pull a file or a URL into one.
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
    });
  return {
    name: NAME,
    async send(message) {
      checkMessage(NAME, message);
      try {
        await (
          await transportOf()
        ).sendMail({
          from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          // RFC 3834: a machine wrote this, so vacation responders do not answer it.
          headers: { 'Auto-Submitted': 'auto-generated' },
          signal: AbortSignal.timeout(timeouts.sendMs),
        });
      } catch (error) {
        throw toMailerError(error, where, timeouts);
      }
    },
  };
}
