import { loggablePath } from './request-log.js';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, NotFoundError, describeWait } from '../errors.js';
import type { Logger } from '../logger.js';
import { ProviderError } from '../mfa/provider.js';
import { StoreUnavailableError } from '../stores/errors.js';
import { isDatabaseUnavailable } from '../stores/sql/errors.js';
import { HashingAbandonedError } from '../users/passwords.js';
import { isCsrfError } from './csrf.js';

const RETRY_CODE_STEP = { href: '/verify', label: 'Back to the code page' };

/** What a person is told when a provider fails; the operator gets the detail in the log. */
export function providerErrorToAppError(error: ProviderError): AppError {
  switch (error.kind) {
    case 'invalid_number':
      return new AppError(400, 'We could not send a code to this number. Check the number on your account.', {
        nextStep: RETRY_CODE_STEP,
      });
    case 'rate_limited':
      return new AppError(
        429,
        `Too many codes requested. Wait ${describeWait(error.retryAfterSeconds ?? 60)} and try again.`,
        { retryAfterSeconds: error.retryAfterSeconds ?? 60, nextStep: RETRY_CODE_STEP },
      );
    case 'auth':
      return new AppError(503, 'Codes cannot be sent right now. Please try again later.', {
        nextStep: RETRY_CODE_STEP,
      });
    case 'unavailable':
      return new AppError(503, 'The service that sends codes did not answer. Please try again in a moment.', {
        nextStep: RETRY_CODE_STEP,
      });
  }
}

function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof ProviderError) return providerErrorToAppError(error);
  if (isCsrfError(error)) {
    return new AppError(
      403,
      'This form was out of date or did not come from this site. Go back, reload the page and try again.',
      {
        advice:
          'This happens when a page stays open a long time or the site was opened in another tab. Nothing was changed.',
        nextStep: { href: '/login', label: 'Go to the login page' },
      },
    );
  }
  // The SQL stores already throw StoreUnavailableError (an AppError); this catches what fails on the
  // way to them outside their driver, such as a query after the database was closed at shutdown.
  if (isDatabaseUnavailable(error)) return new StoreUnavailableError('database', error);
  const status = (error as { status?: unknown; statusCode?: unknown })?.status;
  const type = (error as { type?: unknown })?.type;
  if (status === 413 || type === 'entity.too.large') {
    return new AppError(413, 'What you sent is too large.');
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError(400, 'The request could not be understood.');
  }
  return new AppError(500, 'Something went wrong on our side. Please try again.');
}

const VIEWS_BY_STATUS = new Set([403, 404, 429, 500, 503]);

export const notFoundHandler: RequestHandler = (_req, _res, next) => next(new NotFoundError());

/** While a store is down, one log line per store this often, with how many failures it stands for. */
const OUTAGE_LOG_INTERVAL_MS = 10_000;

/**
 * During an outage every request fails the same way: one line per store every few seconds tells
 * the operator as much as thousands would, and keeps bot traffic from flooding the log.
 */
function createOutageLog(logger: Logger) {
  const lastLoggedAt = new Map<string, number>();
  const unlogged = new Map<string, number>();
  return (error: StoreUnavailableError, req: { method: string; path: string }) => {
    const store = error.message.split(' unavailable:')[0] ?? 'store';
    const now = Date.now();
    if (now - (lastLoggedAt.get(store) ?? 0) < OUTAGE_LOG_INTERVAL_MS) {
      unlogged.set(store, (unlogged.get(store) ?? 0) + 1);
      return;
    }
    lastLoggedAt.set(store, now);
    const alsoFailed = unlogged.get(store) ?? 0;
    unlogged.delete(store);
    logger.error(
      {
        store,
        detail: error.message,
        method: req.method,
        path: loggablePath(req.path),
        alsoFailedSinceLastLine: alsoFailed,
      },
      'a store is unavailable: requests get the 503 page',
    );
  };
}

/**
 * Tells the operator what a request failed with, once its answer's status is known: a provider's
 * failure by its kind, a store's outage once every few seconds, anything else answered with a 5xx
 * with its error. Shared by the pages' error handler and the API's (src/api/http.ts).
 */
export function createFailureLog(logger: Logger) {
  const logOutage = createOutageLog(logger);
  return (error: unknown, status: number, req: { method: string; path: string }) => {
    if (error instanceof AppError && error.alreadyLogged) return;
    // The client hung up while its password waited for a turn: nothing failed, and no one reads the
    // page (nor does the request log, which writes at a response's end). One line says it happened.
    if (error instanceof HashingAbandonedError) {
      logger.info(
        { method: req.method, path: loggablePath(req.path) },
        'client hung up while its password waited: not checked',
      );
      return;
    }
    if (error instanceof ProviderError) {
      const level = error.kind === 'auth' ? 'error' : 'warn';
      logger[level](
        { provider: error.provider, kind: error.kind, detail: error.message },
        'code provider failed',
      );
    } else if (error instanceof StoreUnavailableError) {
      logOutage(error, req);
    } else if (isDatabaseUnavailable(error)) {
      logOutage(new StoreUnavailableError('database', error), req);
    } else if (status >= 500) {
      logger.error({ err: error, method: req.method, path: loggablePath(req.path) }, 'request failed');
    }
  };
}

/** The one error middleware, last in app.ts. A page never shows internals. */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  const logFailure = createFailureLog(logger);
  return (error, req, res, _next) => {
    if (res.headersSent) {
      // Too late for a page. express-session lands here when its save after the response fails
      // (a locked database): the operator hears of it in the log, never as a raw stack on stderr.
      logger.error(
        { err: error, method: req.method, path: loggablePath(req.path) },
        'request failed after its response began',
      );
      // A response cut short mid-way cannot be finished properly: end the connection, as Express would.
      if (!res.writableEnded) req.socket.destroy();
      return;
    }
    const appError = toAppError(error);
    logFailure(error, appError.status, req);

    if (appError.retryAfterSeconds) res.set('Retry-After', String(appError.retryAfterSeconds));
    res.set('Cache-Control', 'no-store');
    res.status(appError.status);
    const view = VIEWS_BY_STATUS.has(appError.status) ? appError.view : 'errors/general';
    res.render(
      view,
      { title: titleFor(appError.status), status: appError.status, error: appError },
      (renderError, html) => {
        if (renderError) {
          logger.error({ err: renderError }, 'error page failed to render');
          res.type('text/plain').send(appError.safeMessage);
          return;
        }
        res.send(html);
      },
    );
  };
}

export function titleFor(status: number): string {
  switch (status) {
    case 400:
      return 'That did not work';
    case 403:
      return 'Not allowed';
    case 404:
      return 'Page not found';
    case 413:
      return 'Too large';
    case 429:
      return 'Slow down';
    case 503:
      return 'Temporarily unavailable';
    default:
      return 'Something went wrong';
  }
}
