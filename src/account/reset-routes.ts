import { setTimeout as sleep } from 'node:timers/promises';
import { Router, type Request, type Response } from 'express';
import type { Clock } from '../clock.js';
import { openStage, type StageFactors } from '../factors/stage-factors.js';
import { TooManyRequestsError, describeWait } from '../errors.js';
import { clientKeyOfRequest } from '../http/client-address.js';
import { endPreSession } from '../http/csrf.js';
import { providerErrorToAppError } from '../http/error-pages.js';
import { noStore } from '../http/security-headers.js';
import { saveSession, startNewSession } from '../http/session.js';
import { parseForm, type FieldError } from '../http/validate.js';
import type { Logger } from '../logger.js';
import { describeCodeOnItsWay, describeSendRefusal, type CodeDelivery } from '../mfa/delivery.js';
import { ProviderError } from '../mfa/provider.js';
import { readResetVerified } from '../mfa/scopes.js';
import type { User } from '../users/store.js';
import { tokenPageHeaders } from './email-routes.js';
import { isWellFormedToken } from './one-time-tokens.js';
import {
  RESET_PATH,
  RESET_RESPONSE_FLOOR_MS,
  type PasswordReset,
  type ResetRequestOutcome,
} from './password-reset.js';
import { forgotSchema, resetPasswordSchema } from './schemas.js';

export const FORGOT_PATH = '/forgot';
const NEW_PASSWORD_PATH = `${RESET_PATH}/password`;
export const PASSWORD_RESET_DONE_MESSAGE = 'Your password was changed. Log in with it.';

/**
 * /forgot, the link's page, and the new password (src/account/password-reset.ts has the rules).
 * The code in between is the code page's `reset` stage (src/mfa/routes.ts).
 */
export function createResetRouter(deps: {
  reset: PasswordReset;
  delivery: CodeDelivery;
  clock: Clock;
  logger: Logger;
  isProduction: boolean;
  /** Which factor the reset's code page opens with (the account's default; src/factors/). */
  stageFactors: StageFactors;
}): Router {
  const { reset, delivery, clock } = deps;
  const router = Router();

  const takeFlash = (req: Request) => {
    const flash = req.session.flash;
    delete req.session.flash;
    return flash;
  };

  const renderForgot = (req: Request, res: Response, status: number, errors: FieldError[], value = '') =>
    res.status(status).render('account/forgot', {
      title: 'Reset your password',
      values: { identifier: value },
      errors,
      flash: takeFlash(req),
    });

  router.use(FORGOT_PATH, noStore);
  // Every page under /reset carries a token in its address, or follows one that did.
  router.use(RESET_PATH, tokenPageHeaders);

  router.get(FORGOT_PATH, (req, res) => renderForgot(req, res, 200, []));

  router.post(FORGOT_PATH, async (req, res) => {
    // Measured from here, whatever happens below (a match, none, a refusal), and waited out before
    // anything is sent: the time taken says nothing about which. Real time, not the injected clock.
    const started = performance.now();
    const padToFloor = async () => {
      const left = RESET_RESPONSE_FLOOR_MS - (performance.now() - started);
      if (left > 0) await sleep(left);
    };
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typed = typeof body.identifier === 'string' ? body.identifier.slice(0, 254) : '';
    const form = parseForm(forgotSchema, req.body);
    if (!form.ok) {
      await padToFloor();
      return renderForgot(req, res, 400, form.errors, typed);
    }
    let outcome: ResetRequestOutcome;
    try {
      outcome = await reset.request({
        identifier: form.data.identifier,
        ip: req.ip,
        clientKey: clientKeyOfRequest(req),
      });
    } finally {
      await padToFloor();
    }
    if (!outcome.ok) {
      // Per client address: it says how much this browser asked, nothing about any account.
      throw new TooManyRequestsError(
        `Too many reset requests from your network. Try again in ${describeWait(outcome.retryAfterSeconds)}.`,
        outcome.retryAfterSeconds,
        { href: '/login', label: 'Go to the login page' },
      );
    }
    res.status(200).render('account/forgot-sent', { title: 'Check your email' });
  });

  // Before /reset/:token, which it would otherwise match.
  router.get(NEW_PASSWORD_PATH, (req, res) => {
    if (!readResetVerified(req.session, clock.now().getTime())) return leaveReset(req, res);
    renderNewPassword(req, res, 200, []);
  });

  router.post(NEW_PASSWORD_PATH, async (req, res) => {
    const verified = readResetVerified(req.session, clock.now().getTime());
    if (!verified) return leaveReset(req, res);
    const form = parseForm(resetPasswordSchema, req.body);
    if (!form.ok) return renderNewPassword(req, res, 400, form.errors);
    const outcome = await reset.setNewPassword({
      userId: verified.userId,
      password: form.data.new_password,
      ip: req.ip,
      verifiedAt: verified.verifiedAt,
    });
    delete req.session.resetVerified;
    delete req.session.pendingReset;
    delete req.session.challengeId;
    if (!outcome.ok) return leaveReset(req, res);
    // No automatic login: the person shows the new password (and a login code) like anyone else.
    req.session.flash = { kind: 'info', message: PASSWORD_RESET_DONE_MESSAGE };
    res.redirect(303, '/login');
  });

  router.get(`${RESET_PATH}/:token`, async (req, res) => {
    const token = req.params.token;
    // A GET never uses the link: mail scanners fetch every link in a message.
    const live = isWellFormedToken(token) && (await reset.isLinkLive(token));
    renderLinkPage(res, live ? token : null);
  });

  router.post(`${RESET_PATH}/:token`, async (req, res) => {
    const token = req.params.token;
    const user = isWellFormedToken(token) ? await reset.useLink(token) : null;
    if (!user) return renderLinkPage(res, null);
    await continueToResetCode(req, res, user);
  });

  /**
   * The link worked: a new session (no fixation, and whoever was signed in on this browser is
   * not any more) waiting for the reset code, and the code sent to the account's phone.
   */
  async function continueToResetCode(req: Request, res: Response, user: User) {
    await startNewSession(req);
    req.session.pendingReset = { userId: user.id, startedAt: clock.now().getTime() };
    const channel = delivery.deliverableChannel(user.preferredChannel);
    req.session.channel = channel;
    // The account's default factor: an app or a passkey sends nothing.
    const opening = await openStage(req.session, deps.stageFactors, user, 'reset', channel);
    // Stored before the code goes out, as the password step does (POST /login): a store that
    // cannot keep the session is the 503 page now, not a code sent for a session already lost.
    await saveSession(req);
    endPreSession(res, deps.isProduction);
    if (!('sendBy' in opening)) return res.redirect(303, '/verify');
    try {
      const outcome = await delivery.sendCode(req, { user, scope: 'reset', channel: opening.sendBy });
      if (!outcome.ok) {
        // The code page says why and offers to send another: the link is spent, the session is not.
        req.session.flash =
          outcome.reason === 'cooldown' && outcome.pending
            ? { kind: 'info', message: describeCodeOnItsWay(outcome.retryAfterSeconds) }
            : { kind: 'error', message: describeSendRefusal(outcome) };
      }
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      deps.logger.warn({ err: error }, 'the reset code could not be sent');
      req.session.flash = { kind: 'error', message: providerErrorToAppError(error).safeMessage };
    }
    res.redirect(303, '/verify');
  }

  function renderLinkPage(res: Response, token: string | null) {
    res.status(token ? 200 : 410).render('account/reset-link', {
      title: token ? 'Reset your password' : 'This link no longer works',
      token,
    });
  }

  function renderNewPassword(req: Request, res: Response, status: number, errors: FieldError[]) {
    res.status(status).render('account/reset-password', {
      title: 'Choose a new password',
      errors,
      flash: takeFlash(req),
    });
  }

  /** No verified reset in this session (none, too old, or the account is gone): start again. */
  function leaveReset(req: Request, res: Response) {
    const hadOne = req.session.resetVerified !== undefined;
    delete req.session.resetVerified;
    if (hadOne) {
      req.session.flash = {
        kind: 'error',
        message: 'Your reset took too long. Ask for a new link: each link works once.',
      };
    }
    res.redirect(303, FORGOT_PATH);
  }

  return router;
}
