import { isEmailAddress } from './address.js';

/**
 * What the site needs from whoever delivers its emails. A mailer only delivers: who gets which
 * message, how often, and what a failed send means for the person are the callers' decisions.
 */

/** One email to one person: plain text, and the same words as simple HTML (src/email/compose.ts). */
export interface EmailMessage {
  /** A single address (ada@example.com): never a list, never a name. */
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** 'console' or 'smtp', for logs and the start-up line. */
  readonly name: string;
  /** Resolves once the message is handed over; throws a MailerError otherwise. */
  send(message: EmailMessage): Promise<void>;
}

/**
 * invalid_message: refused before anything was sent (not one address, a line break in the subject);
 * auth: the server refused the login; rejected: the server refused this message (5xx);
 * unavailable: no server, no answer in time, TLS failed, or a temporary refusal (4xx).
 */
export type MailerErrorKind = 'invalid_message' | 'auth' | 'rejected' | 'unavailable';

/**
 * A send that did not go through. Its message names the mailer, what went wrong and a short code,
 * never a password, an address or a body: loggers print errors whole, causes included, so the
 * transport's own error (which may quote the SMTP dialogue) is not attached.
 */
export class MailerError extends Error {
  readonly kind: MailerErrorKind;
  readonly mailer: string;

  constructor(kind: MailerErrorKind, mailer: string, detail: string) {
    super(`${mailer}: ${detail}`);
    this.name = 'MailerError';
    this.kind = kind;
    this.mailer = mailer;
  }
}

/** Control characters in a header would start a new header line (a Bcc, say). */
const CONTROL_CHARACTER = /\p{Cc}/u;

/** Refuses, before any connection, a message no mailer should send. */
export function checkMessage(mailer: string, message: EmailMessage): void {
  if (!isEmailAddress(message.to)) {
    throw new MailerError('invalid_message', mailer, 'the recipient is not one email address');
  }
  if (message.subject.trim() === '' || CONTROL_CHARACTER.test(message.subject)) {
    throw new MailerError('invalid_message', mailer, 'the subject is empty or holds a control character');
  }
}
