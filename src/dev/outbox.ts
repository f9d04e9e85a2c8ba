import { Router } from 'express';
import type { Channel } from '../mfa/provider.js';

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
  add(message: OutboxMessage): void;
  /** Newest first. */
  list(): OutboxMessage[];
}

const OUTBOX_LIMIT = 100;

export function createOutbox(limit = OUTBOX_LIMIT): Outbox {
  const messages: OutboxMessage[] = [];
  return {
    add(message) {
      messages.unshift(message);
      messages.length = Math.min(messages.length, limit);
    },
    list: () => [...messages],
  };
}

export function createOutboxRouter(outbox: Outbox): Router {
  const router = Router();
  router.get('/dev/outbox', (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.render('dev/outbox', { title: 'Outbox (development)', messages: outbox.list() });
  });
  return router;
}
