import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import { createFailureLog } from '../http/error-pages.js';
import type { Logger } from '../logger.js';
import { ProviderError } from '../mfa/provider.js';
import { StoreUnavailableError } from '../stores/errors.js';
import { isDatabaseUnavailable } from '../stores/sql/errors.js';
import { problemAnswer, sendAnswer, sendProblem, type ApiAnswer } from './problem.js';
import { FailedAfterSendError } from './verifications.js';

/**
 * What the API's routers share (routes.ts, sample-routes.ts): their own body parsers, no caching,
 * 405 with Allow, and an error handler that answers problem+json, never the site's HTML pages.
 * Mounted before the site's session, body parser and CSRF (app.ts): no cookie is ever read or set.
 */

/** A request body is at most this big: a verification's fields take a few dozen bytes. */
const BODY_LIMIT = '8kb';

/** Every answer is about one caller's codes at one moment: nothing may keep it. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};

const hasBody = (req: Request) =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * Reads a JSON body (and, with `form`, an HTML form's) into req.body, or answers 400
 * malformed-body: a body that is not JSON, not an object, or of another type. No body at all is
 * an empty object, whose missing fields the schema then names (422).
 */
export function readBody(options: { form?: boolean } = {}): RequestHandler {
  const json = express.json({ limit: BODY_LIMIT, type: () => true });
  const form = express.urlencoded({
    extended: false,
    limit: BODY_LIMIT,
    parameterLimit: 20,
    type: () => true,
  });
  const accepted = options.form
    ? 'as JSON (Content-Type: application/json) or as a form (application/x-www-form-urlencoded)'
    : 'as JSON (Content-Type: application/json)';
  return (req, res, next) => {
    if (!hasBody(req)) {
      req.body = {};
      return next();
    }
    const parser = req.is(['application/json', '+json'])
      ? json
      : options.form && req.is('application/x-www-form-urlencoded')
        ? form
        : null;
    if (!parser) return sendProblem(res, 'malformed-body', { detail: `Send the body ${accepted}.` });
    parser(req, res, (error?: unknown) => {
      if (error) return next(error);
      if (!isPlainObject(req.body)) {
        return sendProblem(res, 'malformed-body', { detail: 'The body must be a JSON object.' });
      }
      next();
    });
  };
}

/** Any method but those a path takes: 405 with Allow. */
export function methodNotAllowed(allow: string[], detail?: string): RequestHandler {
  return (req, res) => {
    res.set('Allow', allow.join(', '));
    sendProblem(res, 'method-not-allowed', {
      detail: detail ?? `${req.method} is not taken here; this path takes ${allow.join(', ')}.`,
    });
  };
}

/** Any /api/ path the API does not have. */
export const apiNotFound: RequestHandler = (_req, res) => {
  res.set('Cache-Control', 'no-store');
  sendProblem(res, 'not-found', { detail: 'There is nothing at this path of the API.' });
};

/**
 * What body-parser throws for a body it could not read (not JSON, too large, a bad charset or
 * encoding, a gzip body that is not gzip): a 4xx in `status` or `statusCode`, with or without a
 * `type` (a stream error it wraps has none). All of them are the caller's: 400 malformed-body.
 */
const isUnreadableBody = (error: unknown) => {
  const { status, statusCode } = (error ?? {}) as { status?: unknown; statusCode?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  return typeof code === 'number' && code >= 400 && code < 500;
};

function unreadableBodyDetail(error: unknown): string {
  switch ((error as { type?: unknown }).type) {
    case 'entity.too.large':
      return `The body is larger than ${BODY_LIMIT.replace('kb', ' kB')}.`;
    case 'entity.parse.failed':
      return 'The body is not valid JSON.';
    case 'charset.unsupported':
      return 'The body’s charset is not taken here: send UTF-8.';
    case 'encoding.unsupported':
      return 'The body’s Content-Encoding is not taken here: send it as is, or gzip, deflate or br.';
    default:
      return 'The body could not be read.';
  }
}

/** The problem a failure is answered with. Only a safe sentence: never an error's own message. */
export function failureAnswer(error: unknown): ApiAnswer {
  if (isUnreadableBody(error)) {
    return problemAnswer('malformed-body', { detail: unreadableBodyDetail(error) });
  }
  if (error instanceof FailedAfterSendError) {
    return problemAnswer('unavailable', {
      detail: `The code may have been sent, but this request failed after: do not ask for another before ${error.retryAfterSeconds} seconds.`,
      retryAfterSeconds: error.retryAfterSeconds,
    });
  }
  if (error instanceof ProviderError) {
    switch (error.kind) {
      case 'invalid_number':
        return problemAnswer('destination-refused', {
          detail: 'The code provider refused to send a code to this number.',
        });
      case 'rate_limited':
        return problemAnswer('too-many-requests', {
          detail: 'The code provider asks to wait before another code to this number.',
          retryAfterSeconds: error.retryAfterSeconds ?? 60,
        });
      case 'auth':
      case 'unavailable':
        return problemAnswer('unavailable', {
          detail:
            error.delivered === 'no'
              ? 'No code provider could handle this request right now. Nothing was sent; try again later.'
              : 'The code provider did not answer in time: a code may have been sent. Send a new request to have another.',
        });
    }
  }
  if (error instanceof StoreUnavailableError || isDatabaseUnavailable(error)) {
    return problemAnswer('unavailable', {
      detail: 'The service cannot reach its data right now. Try again in a moment.',
      retryAfterSeconds: 5,
    });
  }
  return problemAnswer('internal', { detail: 'Something went wrong on our side. Try again later.' });
}

/** The API's one error handler: a problem document, the failure logged as the pages' handler logs it. */
export function createApiErrorHandler(logger: Logger): ErrorRequestHandler {
  const logFailure = createFailureLog(logger);
  return (error, req, res, _next) => {
    if (res.headersSent) {
      logger.error({ err: error, method: req.method }, 'API request failed after its answer began');
      if (!res.writableEnded) req.socket.destroy();
      return;
    }
    const answer = failureAnswer(error);
    // After a send, what failed is the cause: the operator hears of it as of any other failure.
    logFailure(error instanceof FailedAfterSendError ? error.cause : error, answer.status, req);
    res.set('Cache-Control', 'no-store');
    sendAnswer(res, answer);
  };
}
