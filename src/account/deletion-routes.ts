import { formatTime } from '../http/time-format.js';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { currentUserOf, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { TooManyRequestsError } from '../errors.js';
import { endPreSession } from '../http/csrf.js';
import { noStore } from '../http/security-headers.js';
import { logOutThisBrowser } from '../http/session.js';
import { hasDisallowedCharacters, parseForm, type FieldError } from '../http/validate.js';
import type { Logger } from '../logger.js';
import { isSettingsVerified } from '../mfa/scopes.js';
import { DELETION_LINK_TTL_MS, DELETION_PATH, type AccountDeletion } from './deletion.js';
import { tokenPageHeaders } from './email-routes.js';
import { isWellFormedToken } from './one-time-tokens.js';
import { requireFreshSettingsCode } from './settings-step-up.js';

export const DELETED_PATH = '/account/deleted';

const deletionSchema = z.object({
  username: z
    .string({ error: 'Type your username.' })
    .refine((value) => !hasDisallowedCharacters(value), { error: 'Type your username as it is.' })
    .pipe(
      z
        .string()
        .trim()
        .min(1, { error: 'Type your username.' })
        .max(64, { error: 'Type your username as it is.' }),
    ),
});

const LAST_ADMIN_MESSAGE =
  'You are the only admin of this site, so your account cannot be deleted: the secure area would have no one left to enter it. Make another account an admin first, then delete this one.';

/**
 * /account/delete: a thin layer over src/account/deletion.ts. The link's page asks before it
 * deletes (a POST): mail scanners fetch every link in a message, and must never delete an account.
 */
export function createDeletionRouter(deps: {
  deletion: AccountDeletion;
  clock: Clock;
  isProduction: boolean;
  logger: Logger;
}): Router {
  const { deletion, clock } = deps;
  const router = Router();
  const linkPath = `${DELETION_PATH}/:token`;

  router.use(DELETION_PATH, noStore);

  /** The link emailed to this browser's account, if one is still waiting. */
  function waitingRequest(req: Request, userId: number) {
    const request = req.session.deletionRequest;
    const now = clock.now().getTime();
    return request && request.userId === userId && now - request.requestedAt < DELETION_LINK_TTL_MS
      ? request
      : null;
  }

  function renderDeletePage(
    req: Request,
    res: Response,
    status: number,
    form: { errors?: FieldError[]; values?: object; problem?: string } = {},
  ) {
    const user = currentUserOf(res)!;
    const flash = req.session.flash;
    delete req.session.flash;
    res.status(status).render('account/delete', {
      title: 'Delete your account',
      flash,
      email: user.email,
      linkSent: waitingRequest(req, user.id) !== null,
      confirmed: isSettingsVerified(req.session, user.id, clock.now().getTime()),
      returnTo: DELETION_PATH,
      values: form.values ?? {},
      errors: form.errors ?? [],
      problem: form.problem ?? null,
    });
  }

  router.get(DELETION_PATH, requireSignedIn, (req, res) => renderDeletePage(req, res, 200));

  router.post(DELETION_PATH, requireSignedIn, requireFreshSettingsCode(clock), async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(deletionSchema, req.body);
    if (!form.ok) return renderDeletePage(req, res, 400, { errors: form.errors });
    if (!deletion.isOwnName(user, form.data.username)) {
      return renderDeletePage(req, res, 400, {
        errors: [{ field: 'username', message: 'That is not your username. Type it as you log in with it.' }],
        values: form.data,
      });
    }
    const outcome = await deletion.request(user, req.ip);
    switch (outcome.kind) {
      case 'link_sent':
        req.session.deletionRequest = outcome.request;
        req.session.flash = {
          kind: 'info',
          message: `We sent a link to ${outcome.to}. Open it in this browser within 30 minutes to delete your account.`,
        };
        return res.redirect(303, DELETION_PATH);
      case 'deleted':
        return endThisBrowser(req, res);
      case 'last_admin':
        return renderDeletePage(req, res, 409, { problem: LAST_ADMIN_MESSAGE });
      case 'email_changed_lately':
        return renderDeletePage(req, res, 409, {
          problem: `Your email address was removed or changed in the last 24 hours. For your safety, the account can be deleted from ${formatTime(outcome.until)} UTC.`,
        });
      case 'too_many':
        throw new TooManyRequestsError(
          'Too many deletion links were sent for your account. Use the newest one, or wait and ask again.',
          outcome.retryAfterSeconds,
          { href: DELETION_PATH, label: 'Back' },
        );
      case 'unavailable':
        return renderDeletePage(req, res, 503, {
          problem:
            'We could not send the email with the link. Nothing was deleted. Try again in a few minutes.',
        });
    }
  });

  router.use(linkPath, tokenPageHeaders);

  function renderLinkPage(
    res: Response,
    state: 'live' | 'wrong_browser' | 'invalid' | 'last_admin',
    token?: string,
  ) {
    const status = { live: 200, wrong_browser: 403, invalid: 410, last_admin: 409 }[state];
    const title = {
      live: 'Delete your account',
      wrong_browser: 'Open this link in the browser where you asked',
      invalid: 'This link no longer works',
      last_admin: 'Your account cannot be deleted',
    }[state];
    res.status(status).render('account/delete-link', {
      title,
      state,
      token: state === 'live' ? token : null,
      lastAdminMessage: LAST_ADMIN_MESSAGE,
    });
  }

  router.get(linkPath, async (req, res) => {
    const token = req.params.token;
    if (!isWellFormedToken(token)) return renderLinkPage(res, 'invalid');
    const state = await deletion.inspect(token, req.session.deletionRequest, currentUserOf(res));
    renderLinkPage(res, state, token);
  });

  router.post(linkPath, async (req, res) => {
    const token = req.params.token;
    if (!isWellFormedToken(token)) return renderLinkPage(res, 'invalid');
    const outcome = await deletion.confirm(token, req.session.deletionRequest, currentUserOf(res), req.ip);
    if (outcome.kind === 'deleted') return endThisBrowser(req, res);
    renderLinkPage(res, outcome.kind);
  });

  /** The account is gone: this browser's session ends with it (the others were ended by the deletion). */
  async function endThisBrowser(req: Request, res: Response) {
    await logOutThisBrowser(req, res, { isProduction: deps.isProduction, logger: deps.logger });
    endPreSession(res, deps.isProduction);
    res.redirect(303, DELETED_PATH);
  }

  router.get(DELETED_PATH, noStore, (_req, res) => {
    res.render('account/deleted', { title: 'Your account has been deleted' });
  });

  return router;
}
