import { Router, type RequestHandler } from 'express';
import { currentUserOf } from '../auth/guards.js';
import { EMAIL_VERIFICATION_PATH, type EmailVerification } from './email-verification.js';
import { isWellFormedToken } from './one-time-tokens.js';

/**
 * A page that carries a token in its address: the token must not leave in a Referer header (to
 * an image host, a link the person follows), nor stay in a cache.
 */
export const tokenPageHeaders: RequestHandler = (_req, res, next) => {
  res.set('Referrer-Policy', 'no-referrer');
  res.set('Cache-Control', 'no-store');
  next();
};

/**
 * The email's link opens a page that asks to confirm (a POST): mail scanners that fetch every link
 * in a message must not use the token up, or confirm an address nobody read.
 */
export function createEmailRouter(deps: { verification: EmailVerification }): Router {
  const router = Router();
  const path = `${EMAIL_VERIFICATION_PATH}/:token`;

  router.use(EMAIL_VERIFICATION_PATH, tokenPageHeaders);

  router.get(path, async (req, res) => {
    const token = req.params.token;
    const live = isWellFormedToken(token) && (await deps.verification.isLive(token));
    res.status(live ? 200 : 410).render('account/email-verify', {
      title: live ? 'Confirm your email address' : 'This link no longer works',
      live,
      token: live ? token : null,
      outcome: null,
    });
  });

  router.post(path, async (req, res) => {
    const token = req.params.token;
    const outcome = isWellFormedToken(token)
      ? await deps.verification.confirm(token, req.ip)
      : ({ ok: false, reason: 'invalid' } as const);
    const status = outcome.ok ? 200 : outcome.reason === 'taken' ? 409 : 410;
    res.status(status).render('account/email-verify', {
      title: outcome.ok ? 'Email address confirmed' : 'This link no longer works',
      live: false,
      token: null,
      outcome,
      signedIn: currentUserOf(res) !== undefined,
    });
  });

  return router;
}
