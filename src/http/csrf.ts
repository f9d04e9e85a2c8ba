import { csrfSync } from 'csrf-sync';
import type { Request, RequestHandler, Response } from 'express';
import { saveSession } from './session.js';

export const CSRF_FIELD = '_csrf';

type RenderCallback = (error: Error | null, html?: string) => void;

/**
 * Synchroniser-token CSRF protection (csrf-sync): the token lives in the server-side session and
 * every POST form carries it in a hidden field. The login form is protected too (login CSRF).
 */
export function createCsrfProtection() {
  const { csrfSynchronisedProtection, generateToken, getTokenFromState } = csrfSync({
    getTokenFromRequest: (req: Request) => {
      const body = req.body as Record<string, unknown> | undefined;
      const token = body?.[CSRF_FIELD];
      return typeof token === 'string' ? token : undefined;
    },
  });

  /**
   * Views call csrfToken() when they render a form; a page without a form makes no session.
   *
   * A page that makes a new token has changed the session, and express-session saves a session
   * only after the response is out. Had that save failed (a locked database), the person would
   * see the form, and their next post would get the misleading "form out of date" 403. So such a
   * page is rendered first, the session saved (awaited), and only then sent: a failed save becomes
   * the 503 page. A caller that renders with its own callback (the error pages) sends as it was.
   */
  const exposeToken: RequestHandler = (req, res, next) => {
    let madeNewToken = false;
    res.locals.csrfToken = () => {
      if (typeof getTokenFromState(req) !== 'string') madeNewToken = true;
      return generateToken(req);
    };

    const render = res.render.bind(res) as (view: string, options: object, callback: RenderCallback) => void;
    const renderSavingNewToken = (
      view: string,
      options?: object | RenderCallback,
      callback?: RenderCallback,
    ) => {
      if (typeof options === 'function') return render(view, {}, options as RenderCallback);
      if (callback) return render(view, options ?? {}, callback);
      render(view, options ?? {}, (error, html) => {
        if (error) return req.next?.(error);
        if (!madeNewToken) return void res.send(html);
        saveSession(req).then(
          () => res.send(html),
          (saveError: unknown) => req.next?.(saveError),
        );
      });
    };
    res.render = renderSavingNewToken as Response['render'];
    next();
  };

  return { protect: csrfSynchronisedProtection as RequestHandler, exposeToken };
}

export function isCsrfError(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EBADCSRFTOKEN'
  );
}
