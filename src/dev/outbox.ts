import { Router } from 'express';
import type { Clock } from '../clock.js';
import type { Channel } from '../mfa/provider.js';
import { formatPhoneForDisplay } from '../users/phone.js';

/**
 * What the console provider and the console mailer "sent", so a person can try the site without
 * a phone or a mail server. Only mounted outside production (see app.ts); it holds real codes and
 * real links.
 */
export interface OutboxMessage {
  at: Date;
  channel: Channel;
  to: string;
  text: string;
}

export interface OutboxEmail {
  at: Date;
  to: string;
  subject: string;
  /** The plain-text part, links written out in full. */
  text: string;
}

export interface Outbox {
  /** Stamps the message with the clock's time. */
  add(message: Omit<OutboxMessage, 'at'>): void;
  /** Newest first. */
  list(): OutboxMessage[];
  /** Stamps the email with the clock's time. */
  addEmail(email: Omit<OutboxEmail, 'at'>): void;
  /** Newest first. */
  listEmails(): OutboxEmail[];
}

const OUTBOX_LIMIT = 100;

/** Newest first, and no more than `limit` of them. */
function createNewestFirstList<T>(limit: number) {
  const items: T[] = [];
  return {
    add(item: T) {
      items.unshift(item);
      items.length = Math.min(items.length, limit);
    },
    list: () => [...items],
  };
}

export function createOutbox(clock: Clock, limit = OUTBOX_LIMIT): Outbox {
  const messages = createNewestFirstList<OutboxMessage>(limit);
  const emails = createNewestFirstList<OutboxEmail>(limit);
  return {
    add: (message) => messages.add({ ...message, at: clock.now() }),
    list: messages.list,
    addEmail: (email) => emails.add({ ...email, at: clock.now() }),
    listEmails: emails.list,
  };
}

/** A piece of an email's text: words, or an http(s) link the outbox makes clickable. */
export type TextPiece = { text: string } | { link: string };

const LINK = /https?:\/\/[^\s<>"]+/g;

/** Splits text around its http(s) links; nothing else becomes a link (no javascript:, no mailto:). */
export function splitLinks(text: string): TextPiece[] {
  const pieces: TextPiece[] = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    if (match.index > last) pieces.push({ text: text.slice(last, match.index) });
    pieces.push({ link: match[0] });
    last = match.index + match[0].length;
  }
  if (last < text.length) pieces.push({ text: text.slice(last) });
  return pieces;
}

export function createOutboxRouter(outbox: Outbox): Router {
  const router = Router();
  router.get('/dev/outbox', (_req, res) => {
    res.set('Cache-Control', 'no-store');
    const messages = outbox.list().map((message) => ({ ...message, to: formatPhoneForDisplay(message.to) }));
    const emails = outbox.listEmails().map((email) => ({ ...email, pieces: splitLinks(email.text) }));
    res.render('dev/outbox', { title: 'Outbox (development)', messages, emails });
  });
  return router;
}
