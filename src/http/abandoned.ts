import type { Response } from 'express';

/**
 * Aborted when the connection closes before this response was sent: the person (or client) gave
 * up, and work queued only for their answer (a password hash) can be dropped. Never aborted once
 * the response went out.
 */
export function abandonmentSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  if (res.writableFinished || res.destroyed) {
    if (!res.writableFinished) controller.abort();
    return controller.signal;
  }
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
