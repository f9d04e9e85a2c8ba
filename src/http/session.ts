import session from 'express-session';
import type { RequestHandler, Request } from 'express';

/** A session ends after this long without a request... */
export const SESSION_IDLE_TIMEOUT_MS = 30 * 60_000;
/** ...and after this long in all, however busy. */
export const SESSION_ABSOLUTE_TIMEOUT_MS = 12 * 60 * 60_000;

export function sessionCookieName(isProduction: boolean): string {
  // __Host- makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
  return isProduction ? '__Host-mfa.sid' : 'mfa.sid';
}

export function createSessionMiddleware(options: {
  secret: string;
  store: session.Store;
  isProduction: boolean;
}): RequestHandler {
  return session({
    name: sessionCookieName(options.isProduction),
    secret: options.secret,
    store: options.store,
    resave: false,
    saveUninitialized: false,
    // Each response pushes the idle deadline on; the absolute limit is enforced in mfa/scopes.ts.
    rolling: true,
    unset: 'destroy',
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: options.isProduction,
      path: '/',
      maxAge: SESSION_IDLE_TIMEOUT_MS,
    },
  });
}

/** Gives the request a new session id and an empty session (against session fixation). */
export function regenerateSession(req: Request): Promise<void> {
  return new Promise((resolve, reject) =>
    req.session.regenerate((error) => (error ? reject(error) : resolve())),
  );
}

export function destroySession(req: Request): Promise<void> {
  return new Promise((resolve, reject) =>
    req.session.destroy((error) => (error ? reject(error) : resolve())),
  );
}
