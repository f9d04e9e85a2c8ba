import type { Outbox } from '../dev/outbox.js';
import type { EmailSettings } from './config.js';
import { createConsoleMailer } from './console-mailer.js';
import type { Mailer } from './mailer.js';
import { createSmtpMailer, type SmtpTimeouts } from './smtp-mailer.js';

export interface MailerDeps {
  /** config.email: the provider, the sender, and the SMTP server for smtp. */
  settings: EmailSettings;
  /** Where the console mailer prints each email (the terminal in server.ts). */
  print: (text: string) => void;
  /** The development outbox (absent in production, where the console mailer is refused anyway). */
  outbox?: Outbox;
  /** Shorter deadlines for tests; the defaults are SMTP_TIMEOUTS. */
  timeouts?: Partial<SmtpTimeouts>;
}

/** The only switch on EMAIL_PROVIDER: server.ts and the tests' app builder both come through here. */
export function createMailer(deps: MailerDeps): Mailer {
  const { settings } = deps;
  switch (settings.provider) {
    case 'console':
      return createConsoleMailer({ print: deps.print, outbox: deps.outbox });
    case 'smtp':
      return createSmtpMailer({ smtp: settings.smtp, from: settings.from, timeouts: deps.timeouts });
  }
}
