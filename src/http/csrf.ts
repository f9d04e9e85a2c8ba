import { createHmac } from 'node:crypto';
import { doubleCsrf } from 'csrf-csrf';
import type { CookieOptions, Request, RequestHandler, Response } from 'express';
import { readCookieValues } from './cookies.js';
import { randomId } from './random-id.js';
import { hasSession } from './session.js';

export const CSRF_FIELD = '_csrf';

export function csrfCookieName(isProduction: boolean): string {
  // __Host- makes the browser refuse the cookie unless it is Secure, host-only and Path=/: a sibling
  // subdomain cannot plant ("toss") one of its own, which is what keeps a double-submit token sound.
  return isProduction ? '__Host-mfa.csrf' : 'mfa.csrf';
}

export function preSessionCookieName(isProduction: boolean): string {
  return isProduction ? '__Host-mfa.presession' : 'mfa.presession';
}

/**
 * How many session tokens this process remembers as checked. A signed-in page carries a form (the
 * header's "Log out"), and each made its token by checking the cookie's HMAC again: an HMAC on
 * every page, a few per cent of one (issue 10). Past this many the oldest goes. This is the only
 * state the tokens keep, in this process's memory, for sessions alone: a visitor's form still
 * costs nothing kept, and another instance simply checks the token in full.
 */
export const CHECKED_SESSION_TOKENS_KEPT = 10_000;

/** How long the pre-session (and a token bound to it) lasts: a login form left open that long is out of date. */
const PRE_SESSION_LIFETIME_MS = 12 * 60 * 60_000;

/**
 * The pre-session ends where a session starts (the password step) and at logout, as OWASP asks
 * for login CSRF protection: its tokens never outlive the login they were for.
 */
export function endPreSession(res: Response, isProduction: boolean): void {
  res.clearCookie(preSessionCookieName(isProduction), { path: '/' });
}

/** 32 random bytes, base64url: what this module puts in the pre-session cookie. */
const PRE_SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
/** csrf-csrf's token: an HMAC-SHA256 (hex), a dot, and its 32 random bytes (hex). */
const CSRF_TOKEN = /^[0-9a-f]{64}\.[0-9a-f]{64}$/;

/** A cookie's value when it was sent exactly once and well-formed; otherwise none (never a guess). */
function soleCookieValue(req: Request, name: string, format: RegExp): string | undefined {
  const values = readCookieValues(req.headers.cookie, name);
  return values.length === 1 && format.test(values[0]!) ? values[0] : undefined;
}

export interface CsrfProtection {
  /** Gives views csrfToken(), which makes the page's token on first use. */
  exposeToken: RequestHandler;
  /** Refuses a POST without a good token with the 403 "form out of date" page. */
  protect: RequestHandler;
  /**
   * This page's token, made as csrfToken() makes it (cookies set as needed): for a page sent
   * without a view render of its own (src/auth/form-pages.ts).
   */
  tokenFor(req: Request, res: Response): string;
}

/**
 * Stateless CSRF protection (csrf-csrf's signed double-submit cookie): a form's hidden token must
 * equal the token cookie, and carry an HMAC, under a key only the server has, of what the token is
 * bound to:
 *
 * - with a session (from the password step on): the session id. A token made before the password
 *   step, or in another browser, never passes, and a planted cookie is no use without the
 *   victim's session id;
 * - without one (the login and registration forms): a random pre-session cookie, HttpOnly, set with
 *   the form. So an anonymous visitor's form costs no server-side state at all, while a POST
 *   /login or /register still needs that browser's own cookies and the token minted for them
 *   (login CSRF stays blocked).
 *
 * A token is made only when a page shows a form, and the cookies are sent only when they change.
 */
export function createCsrfProtection(options: {
  /** The session secret; a key for these tokens alone is derived from it. */
  secret: string;
  isProduction: boolean;
  /** Tests only: a smaller CHECKED_SESSION_TOKENS_KEPT, to watch the oldest go. */
  checkedTokensKept?: number;
}): CsrfProtection {
  const tokenCookie = csrfCookieName(options.isProduction);
  const preSessionCookie = preSessionCookieName(options.isProduction);
  const cookieOptions: CookieOptions = {
    httpOnly: true,
    sameSite: 'lax',
    secure: options.isProduction,
    path: '/',
    // A login form's token does not outlive this: a browser left open (or restored) for days, or
    // the next person at a shared computer, starts from a fresh form.
    maxAge: PRE_SESSION_LIFETIME_MS,
  };
  // Its own key, so that nothing else the secret signs can ever pass for a token.
  const key = createHmac('sha256', options.secret).update('keyhole csrf token v1').digest('hex');
  /** Pre-session ids handed out by this very request (its cookie is only on its way to the browser). */
  const newPreSessionIds = new WeakMap<Request, string>();
  /**
   * "binding token" pairs whose token this process made or found good for that session. Only what
   * a page offers is skipped by it (reusing the cookie's token rather than checking it again): every
   * POST is still checked in full by csrf-csrf. Sessions only: a visitor without one costs nothing
   * kept, not even here.
   */
  const checkedSessionTokens = new Set<string>();
  const checkedTokensKept = options.checkedTokensKept ?? CHECKED_SESSION_TOKENS_KEPT;
  const rememberChecked = (pair: string) => {
    if (checkedSessionTokens.size >= checkedTokensKept) {
      checkedSessionTokens.delete(checkedSessionTokens.values().next().value!);
    }
    checkedSessionTokens.add(pair);
  };

  /** What a token is bound to, or none for a browser that has neither a session nor the cookie. */
  const bindingOf = (req: Request): string | undefined => {
    if (hasSession(req)) return `session:${req.sessionID}`;
    const preSessionId = newPreSessionIds.get(req) ?? soleCookieValue(req, preSessionCookie, PRE_SESSION_ID);
    return preSessionId === undefined ? undefined : `presession:${preSessionId}`;
  };

  const { doubleCsrfProtection, generateCsrfToken, invalidCsrfTokenError } = doubleCsrf({
    getSecret: () => key,
    getSessionIdentifier: (req) => bindingOf(req) ?? '',
    cookieName: tokenCookie,
    cookieOptions,
    getCsrfTokenFromRequest: (req) => {
      const body = req.body as Record<string, unknown> | undefined;
      const token = body?.[CSRF_FIELD];
      return typeof token === 'string' ? token : undefined;
    },
  });

  /**
   * csrf-csrf reads its cookie from req.cookies (cookie-parser's place; this app reads cookies
   * itself). Only a well-formed token sent once is put there: a missing, malformed, oversized or
   * doubled cookie counts as none, so it gets a fresh token on a page and a 403 on a post.
   */
  const offerTokenCookie = (req: Request) => {
    const cookies = { ...(req.cookies as Record<string, string> | undefined) };
    const token = soleCookieValue(req, tokenCookie, CSRF_TOKEN);
    if (token === undefined) delete cookies[tokenCookie];
    else cookies[tokenCookie] = token;
    req.cookies = cookies;
  };

  const makeToken = (req: Request, res: Response): string => {
    // The page holds this browser's own token: never from a shared cache, which would hand it to
    // others (whose posts would then fail), however a route set it. Stricter rules stay.
    const caching = res.get('Cache-Control');
    if (!caching || !/\b(private|no-store)\b/.test(caching)) res.set('Cache-Control', 'private, no-cache');
    if (bindingOf(req) === undefined) {
      const preSessionId = randomId(32);
      newPreSessionIds.set(req, preSessionId);
      res.cookie(preSessionCookie, preSessionId, cookieOptions);
    }
    offerTokenCookie(req);
    const sent = (req.cookies as Record<string, string>)[tokenCookie];
    const sessionBinding = hasSession(req) ? bindingOf(req) : undefined;
    if (
      sent !== undefined &&
      sessionBinding !== undefined &&
      checkedSessionTokens.has(`${sessionBinding} ${sent}`)
    ) {
      return sent;
    }
    // csrf-csrf reuses the cookie's token while it is good for this binding and otherwise makes a
    // new one, setting its cookie either way; only a changed cookie is worth a Set-Cookie.
    const setCookieIfChanged = {
      cookie(name: string, value: string, options: CookieOptions) {
        if (value !== sent) res.cookie(name, value, options);
        return setCookieIfChanged;
      },
    };
    const token = generateCsrfToken(req, setCookieIfChanged as unknown as Response);
    if (sessionBinding !== undefined) rememberChecked(`${sessionBinding} ${token}`);
    return token;
  };

  return {
    tokenFor: makeToken,
    exposeToken: (req, res, next) => {
      let token: string | undefined;
      // One token per page: every form on it carries the same one, matching the one cookie.
      res.locals.csrfToken = () => (token ??= makeToken(req, res));
      next();
    },
    protect: (req, res, next) => {
      // A page view has nothing to check (csrf-csrf ignores these methods too): no cookie parsed for it.
      if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
      offerTokenCookie(req);
      // Nothing to check a token against: no session and no pre-session cookie (a forged post).
      if (bindingOf(req) === undefined) return next(invalidCsrfTokenError);
      doubleCsrfProtection(req, res, next);
    },
  };
}

export function isCsrfError(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EBADCSRFTOKEN'
  );
}
