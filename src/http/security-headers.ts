import helmet from 'helmet';
import type { Request, RequestHandler, Response } from 'express';

/**
 * helmet with a Content-Security-Policy that allows no inline script and nothing from other
 * origins. Its headers are the same on every response (no directive depends on the request), so
 * helmet runs once, at start, and each response gets what it set then: twelve middlewares walked
 * on every request cost more than the headers themselves (issue 10).
 */
export function createSecurityHeaders(isProduction: boolean): RequestHandler {
  const { set, removed } = headersSetBy(helmetFor(isProduction));
  return (_req, res, next) => {
    for (const [name, value] of set) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}

/** What a middleware that only sets headers does to a response: the headers it sets and removes. */
function headersSetBy(middleware: RequestHandler): { set: Array<[string, string]>; removed: string[] } {
  const set: Array<[string, string]> = [];
  const removed: string[] = [];
  const recorder = {
    setHeader(name: string, value: unknown) {
      set.push([name, String(value)]);
      return recorder;
    },
    removeHeader(name: string) {
      removed.push(name);
    },
  };
  let finished = false;
  void middleware({} as Request, recorder as unknown as Response, (error?: unknown) => {
    if (error) throw error;
    finished = true;
  });
  // helmet calls next() at once; one that did not would be doing more than setting headers.
  if (!finished) throw new Error('The security headers middleware did not finish at once');
  return { set, removed };
}

/** helmet as configured for this site, run per request: what createSecurityHeaders records once. */
export function helmetFor(isProduction: boolean): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        // Over plain http on a laptop, upgrading would break every form post.
        ...(isProduction ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: isProduction ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'same-origin' },
  });
}

/** Pages behind login must not be kept by the browser or any cache in between. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};
