import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';

/**
 * One line per request for the operator: method, path, status, time. Never the query string
 * (it can carry a username), a one-time id, a header, a cookie or a body.
 */
/**
 * Long random path segments are one-time ids and tokens (a SignalWire voice document, an email's
 * verification, reset or deletion link): a log must not hold them.
 */
const ONE_TIME_ID = /\/[\w-]{20,}(?=\/|$)/g;

/** The path as logs may show it: one-time ids and tokens replaced by ":id". */
export function loggablePath(path: string): string {
  return path.replace(ONE_TIME_ID, '/:id');
}

export function createRequestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
      const level = res.statusCode >= 500 ? 'error' : 'info';
      logger[level](
        {
          method: req.method,
          path: loggablePath(req.path),
          status: res.statusCode,
          ms: Math.round(ms),
          ip: req.ip,
        },
        'request',
      );
    });
    next();
  };
}
