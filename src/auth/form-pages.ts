import { randomBytes } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { readCookieValues } from '../http/cookies.js';
import type { FieldError } from '../http/validate.js';
import type { Channel } from '../mfa/provider.js';
import { COUNTRY_OPTIONS } from './countries.js';

/** A view and what it shows: one place for what the login and registration forms render with. */
export interface FormPage {
  view: string;
  locals: Record<string, unknown>;
}

export function loginPage(options: {
  channels: Channel[];
  values: Record<string, string>;
  errors: FieldError[];
  notice?: string | undefined;
  flash?: unknown;
}): FormPage {
  return {
    view: 'auth/login',
    locals: {
      title: 'Log in',
      values: options.values,
      errors: options.errors,
      notice: options.notice,
      flash: options.flash,
      channels: options.channels,
    },
  };
}

export function registerPage(options: {
  channels: Channel[];
  values: Record<string, string>;
  errors: FieldError[];
}): FormPage {
  return {
    view: 'auth/register',
    locals: {
      title: 'Create an account',
      values: options.values,
      errors: options.errors,
      countries: COUNTRY_OPTIONS,
      channels: options.channels,
    },
  };
}

/** What a new visitor's registration form starts with. */
export const registerDefaults = (channels: Channel[]) => ({ channel: channels[0] ?? 'sms', country: 'US' });

/**
 * The login and registration forms as a new visitor first sees them: the same page for everyone
 * but for its CSRF token (issue 10). Rendered once per set of deliverable channels and kept as the
 * text around the token, so a visit costs a token and a copy, not a render, nor the session
 * middleware: mounted before it, this answers only requests that bring no session cookie (nor,
 * for the login, a remembered channel) and no query string, and passes every other one on to the
 * routes in src/auth/routes.ts, which render the same FormPage.
 *
 * Outside production nothing is kept (as with EJS's own cache there), so an edited view shows at
 * the next visit.
 */
export function createAnonymousFormPages(deps: {
  channels: () => Channel[];
  render: (view: string, locals: Record<string, unknown>) => Promise<string>;
  csrfTokenFor: (req: Request, res: Response) => string;
  sessionCookieName: string;
  channelCookieName: string;
  keepRendered: boolean;
}): RequestHandler {
  // Random per process: no text a visitor can put into these pages could match it (and they hold none).
  const placeholder = `csrf-token-${randomBytes(16).toString('hex')}`;
  const rendered = new Map<string, string[]>();
  const pageAt = (path: '/login' | '/register', channels: Channel[]): FormPage =>
    path === '/login'
      ? loginPage({ channels, values: { channel: '', username: '', next: '' }, errors: [] })
      : registerPage({ channels, values: registerDefaults(channels), errors: [] });
  const renderParts = async (path: '/login' | '/register', channels: Channel[], key: string) => {
    const page = pageAt(path, channels);
    const parts = (await deps.render(page.view, { ...page.locals, csrfToken: () => placeholder })).split(
      placeholder,
    );
    if (deps.keepRendered) rendered.set(key, parts);
    return parts;
  };
  const brings = (req: Request, cookieName: string) =>
    readCookieValues(req.headers.cookie, cookieName).length > 0;
  const send = (req: Request, res: Response, parts: string[]) => {
    const token = deps.csrfTokenFor(req, res);
    // The type as res.type('html') would set it, without its lookup on every visit.
    res.status(200).setHeader('Content-Type', 'text/html; charset=utf-8');
    res.send(parts.join(token));
  };

  // Not an async function: every request passes here, and most only go on (no promise for them).
  return (req, res, next) => {
    // req.url, not req.path: any query string (?next=, ?signedOut) is the routes' to read.
    const path = req.url;
    if ((req.method !== 'GET' && req.method !== 'HEAD') || (path !== '/login' && path !== '/register')) {
      return next();
    }
    if (brings(req, deps.sessionCookieName) || (path === '/login' && brings(req, deps.channelCookieName))) {
      return next();
    }
    const channels = deps.channels();
    const key = `${path} ${channels.join(',')}`;
    const parts = rendered.get(key);
    if (parts) return send(req, res, parts);
    // Express 5 passes a rejection of the returned promise on to the error pages.
    return renderParts(path, channels, key).then((fresh) => send(req, res, fresh));
  };
}
