import { randomBytes } from 'node:crypto';
import session from 'express-session';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../logger.js';
import { canRetireSessions, type RetiringSessionStore } from './session-store.js';

/** A session ends after this long without a request... */
export const SESSION_IDLE_TIMEOUT_MS = 30 * 60_000;
/** ...and after this long in all, however busy. */
export const SESSION_ABSOLUTE_TIMEOUT_MS = 12 * 60 * 60_000;

export function sessionCookieName(isProduction: boolean): string {
  // __Host- makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
  return isProduction ? '__Host-mfa.sid' : 'mfa.sid';
}

/** Requests for which express-session had to make up a session id: they brought no session it knew. */
const requestsGivenNewSessionId = new WeakSet<Request>();
/** Requests that started a session of their own (the password step, an accepted code): it is saved. */
const requestsThatStartedSession = new WeakSet<Request>();

/**
 * True when this request belongs to a session that is (or, by the end of this request, will be) in
 * the store: one the browser brought and the store knew, or one this request started. A visitor
 * without one has no session at all: nothing is written for them (src/http/csrf.ts binds their
 * form tokens to a cookie instead).
 */
export function hasSession(req: Request): boolean {
  if (!req.session) return false;
  return requestsThatStartedSession.has(req) || !requestsGivenNewSessionId.has(req);
}

export function createSessionMiddleware(options: {
  secret: string;
  store: RetiringSessionStore;
  isProduction: boolean;
}): RequestHandler {
  // Checked at start, not trusted to the type: a store that cannot end a session id for good
  // (express-session's MemoryStore, a plain connect-redis) would let a request still running
  // when the person logs out save the session back, and the logged-out cookie work again.
  if (!canRetireSessions(options.store)) {
    throw new Error('The session store must keep ended sessions ended (a retireSession method).');
  }
  return session({
    name: sessionCookieName(options.isProduction),
    secret: options.secret,
    store: options.store,
    resave: false,
    saveUninitialized: false,
    // The cookie is sent again when the session changes, which a signed-in session does at least
    // once a minute while in use (its last activity, src/auth/guards.ts); a Set-Cookie on every
    // response would only re-sign the same id. The idle and absolute limits are enforced in
    // mfa/scopes.ts.
    rolling: false,
    unset: 'destroy',
    // express-session's own ids (24 random bytes), noting which requests it had to make one for.
    // Straight from the CSPRNG, not from random-id.ts's pool: a pool holds the ids of the next
    // sign-ins in memory before they are handed out.
    genid: (req) => {
      requestsGivenNewSessionId.add(req);
      return randomBytes(24).toString('base64url');
    },
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: options.isProduction,
      path: '/',
      maxAge: SESSION_IDLE_TIMEOUT_MS,
    },
  });
}

/** The request's store, which createSessionMiddleware checked can retire sessions. */
function retiringStoreOf(req: Request): RetiringSessionStore & { generate(req: Request): void } {
  return req.sessionStore as unknown as RetiringSessionStore & { generate(req: Request): void };
}

/** Where a request goes when its session ended while it ran; the login page says so. */
export const SESSION_ENDED_PATH = '/login?sessionEnded';

/**
 * Gives the request a new session id and an empty session (against session fixation), and ends
 * the old id for good. Resolves false, with no new session, when the old id had already ended
 * while this request ran: a logout (or another tab's login) during a slow code check must not be
 * undone by this request handing the browser a fresh signed-in session. The caller then sends the
 * person to SESSION_ENDED_PATH.
 */
export async function regenerateSession(req: Request): Promise<boolean> {
  const store = retiringStoreOf(req);
  const wasLive = await new Promise<boolean>((resolve, reject) =>
    store.retireSession(req.sessionID, (error, live) => (error ? reject(error) : resolve(live === true))),
  );
  if (!wasLive) {
    // Drops the old session from the request too, so nothing is saved and no cookie is set.
    await destroySession(req);
    return false;
  }
  store.generate(req);
  requestsThatStartedSession.add(req);
  return true;
}

/**
 * For the password step, where a session starts: the right password proves the person afresh, so a
 * new session starts even when the old id had already ended (a "Log in" clicked twice, racing
 * itself). An old id the browser brought is ended for good either way.
 */
export async function startNewSession(req: Request): Promise<void> {
  const store = retiringStoreOf(req);
  // A visitor without a session has no id to end (the one express-session made up was never stored).
  if (hasSession(req)) {
    await new Promise<void>((resolve, reject) =>
      store.retireSession(req.sessionID, (error) => (error ? reject(error) : resolve())),
    );
  }
  store.generate(req);
  requestsThatStartedSession.add(req);
}

/** Writes the session to the store now, rather than after the response has begun. */
export function saveSession(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((error) => (error ? reject(error) : resolve())));
}

export function destroySession(req: Request): Promise<void> {
  return new Promise((resolve, reject) =>
    req.session.destroy((error) => (error ? reject(error) : resolve())),
  );
}

/** When the store is unavailable at logout, ending the session is tried again this often. */
const LOGOUT_RETRY_DELAYS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000];

/**
 * Logs this browser out whatever the store says: the cookie is cleared first, and when the store
 * cannot end the session right now (a locked or unreachable database), the request drops the
 * session so nothing writes it back, and the store is asked again on a timer. A person on a shared
 * computer who pressed "Log out" must never find the next visitor signed in as them.
 */
export async function logOutThisBrowser(
  req: Request,
  res: Response,
  options: { isProduction: boolean; logger: Logger },
): Promise<void> {
  res.clearCookie(sessionCookieName(options.isProduction), { path: '/' });
  // No session to end: express-session made up an id for this request, and ending it would store a
  // tombstone for nothing (an anonymous visitor must cost no server-side state).
  if (!hasSession(req)) return;
  const sid = req.sessionID;
  const store = req.sessionStore;
  try {
    await destroySession(req);
  } catch (error) {
    // express-session neither saves nor sets a cookie for a request without a session.
    (req as { session?: unknown }).session = undefined;
    options.logger.warn({ err: error }, 'could not end a session at logout; trying again in the background');
    const retry = (attempt: number) => {
      const delay = LOGOUT_RETRY_DELAYS_MS[attempt];
      if (delay === undefined) {
        options.logger.error('gave up ending a session after logout; it ends when it expires');
        return;
      }
      setTimeout(() => store.destroy(sid, (failed) => failed && retry(attempt + 1)), delay).unref();
    };
    retry(0);
  }
}
