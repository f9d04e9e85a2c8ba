import { Router } from 'express';
import type { Clock } from '../clock.js';
import type { Channel } from '../mfa/provider.js';
import { formatPhoneForDisplay } from '../users/phone.js';

/**
 * What the console provider "sent", so a person can try the site without a phone.
 * Only mounted outside production (see app.ts); it holds real codes.
 */
export interface OutboxMessage {
  at: Date;
  channel: Channel;
  to: string;
  text: string;
}

export interface Outbox {
  /** Stamps the message with the clock's time. */
  add(message: Omit<OutboxMessage, 'at'>): void;
  /** Newest first. */
  list(): OutboxMessage[];
}

const OUTBOX_LIMIT = 100;

export function createOutbox(clock: Clock, limit = OUTBOX_LIMIT): Outbox {
  const messages: OutboxMessage[] = [];
  return {
    add(message) {
      messages.unshift({ ...message, at: clock.now() });
      messages.length = Math.min(messages.length, limit);
    },
    list: () => [...messages],
  };
}

export function createOutboxRouter(outbox: Outbox): Router {
  const router = Router();
  router.get('/dev/outbox', (_req, res) => {
    res.set('Cache-Control', 'no-store');
    const messages = outbox.list().map((message) => ({ ...message, to: formatPhoneForDisplay(message.to) }));
    res.render('dev/outbox', { title: 'Outbox (development)', messages });
  });
  return router;
}
