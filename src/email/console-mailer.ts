import type { Outbox } from '../dev/outbox.js';
import { checkMessage, type Mailer } from './mailer.js';

export interface ConsoleMailerOptions {
  /** Where the readable message goes: the terminal in the real app, an array in tests. */
  print: (text: string) => void;
  /** /dev/outbox lists each email beside the codes. */
  outbox?: Outbox;
}

/** Indents each line of the body under its heading, so one email reads as one block in the terminal. */
const indent = (text: string) =>
  text
    .split('\n')
    .map((line) => (line === '' ? '' : `    ${line}`))
    .join('\n');

/**
 * The development mailer: "delivers" each email to the terminal and the outbox. Production refuses
 * it (src/email/config.ts): the terminal is the server's log, and links in it are credentials.
 */
export function createConsoleMailer(options: ConsoleMailerOptions): Mailer {
  const { print, outbox } = options;
  return {
    name: 'console',
    async send(message) {
      checkMessage('console', message);
      print(`Email to ${message.to}: ${message.subject}\n${indent(message.text)}`);
      outbox?.addEmail({ to: message.to, subject: message.subject, text: message.text });
    },
  };
}
