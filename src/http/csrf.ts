import { csrfSync } from 'csrf-sync';
import type { Request, RequestHandler } from 'express';

export const CSRF_FIELD = '_csrf';

/**
 * Synchroniser-token CSRF protection (csrf-sync): the token lives in the server-side session and
 * every POST form carries it in a hidden field. The login form is protected too (login CSRF).
 */
export function createCsrfProtection() {
  const { csrfSynchronisedProtection, generateToken } = csrfSync({
    getTokenFromRequest: (req: Request) => {
      const body = req.body as Record<string, unknown> | undefined;
      const token = body?.[CSRF_FIELD];
      return typeof token === 'string' ? token : undefined;
    },
  });

  // Views call csrfToken() when they render a form; a page without a form makes no session.
  const exposeToken: RequestHandler = (req, res, next) => {
    res.locals.csrfToken = () => generateToken(req);
    next();
  };

  return { protect: csrfSynchronisedProtection as RequestHandler, exposeToken };
}

export function isCsrfError(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EBADCSRFTOKEN'
  );
}
