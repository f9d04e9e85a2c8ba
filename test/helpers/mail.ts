import { expect } from 'vitest';
import type { Browser } from './agent.js';
import { createTestApp, type TestApp, type TestAppOptions } from './create-test-app.js';
import { eventually } from './eventually.js';
import { startTestSmtpServer, type ReceivedEmail, type TestSmtpServer } from './smtp-server.js';

/**
 * A whole app that sends its emails through a real SMTP server started for the test (the
 * smtp-server package on loopback): what a test reads is what a mail host received.
 */
export interface MailTestApp {
  site: TestApp;
  smtp: TestSmtpServer;
  /** Emails received for `address`, oldest first. */
  mailTo(address: string): ReceivedEmail[];
  /** Waits (briefly) until `address` has received `count` emails in all, and answers the newest. */
  waitForMail(address: string, count?: number): Promise<ReceivedEmail>;
  close(): Promise<void>;
}

export async function createMailTestApp(options: TestAppOptions = {}): Promise<MailTestApp> {
  const smtp = await startTestSmtpServer();
  const site = await createTestApp({
    ...options,
    env: {
      EMAIL_PROVIDER: 'smtp',
      SMTP_URL: smtp.url,
      EMAIL_FROM: 'Keyhole <no-reply@example.com>',
      ...options.env,
    },
  });
  const mailTo = (address: string) =>
    smtp.messages.filter((message) =>
      message.envelope.to.some((recipient) => recipient.toLowerCase() === address.toLowerCase()),
    );
  return {
    site,
    smtp,
    mailTo,
    async waitForMail(address, count = 1) {
      await eventually(async () => expect(mailTo(address).length).toBeGreaterThanOrEqual(count));
      return mailTo(address).at(-1)!;
    },
    async close() {
      await site.close();
      await smtp.close();
    },
  };
}

/** The one link to this site an email holds, as a path ("/email/verify/…"). */
export function linkPathIn(email: ReceivedEmail): string {
  const links = [...email.text.matchAll(/https?:\/\/[^\s]+/g)].map((match) => new URL(match[0]));
  expect(links).toHaveLength(1);
  return links[0]!.pathname + links[0]!.search;
}

/** Opens the newest link mailed to `address` and confirms it: the account's address is verified. */
export async function confirmNewestLink(mail: MailTestApp, browser: Browser, address: string): Promise<void> {
  const link = linkPathIn(mail.mailTo(address).at(-1) ?? (await mail.waitForMail(address)));
  const page = await browser.submit(link, link);
  expect(page.status).toBe(200);
}
