import type { Request, Response } from 'express';

/**
 * Aborted when the connection closes before this response was sent: the person (or client) gave
 * up, and work queued only for their answer (a password hash) can be dropped. Never aborted once
 * the response went out.
 *
 * The socket is watched as well as the response: a request pipelined behind another on the same
 * connection has no response attached to the socket yet, and its response never hears the close.
 */
export function abandonmentSignal(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  const socket = req.socket;
  const checkGone = () => {
    if (!res.writableFinished) controller.abort();
  };
  if (res.writableFinished) return controller.signal;
  if (res.destroyed || socket.destroyed) {
    controller.abort();
    return controller.signal;
  }
  socket.once('close', checkGone);
  // A response closes after it finished too: then a keep-alive connection, which carries many
  // requests, loses this request's listener.
  res.once('close', () => {
    socket.off('close', checkGone);
    checkGone();
  });
  return controller.signal;
}
