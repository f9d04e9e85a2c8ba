import { Router, type RequestHandler } from 'express';
import { currentUserOf, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { openOnPasskeyWhileCodesPaused, openStage, type StageFactors } from '../factors/stage-factors.js';
import { TooManyRequestsError } from '../errors.js';
import { toSafeReturnPath } from '../http/safe-redirect.js';
import { noStore } from '../http/security-headers.js';
import { describeCodeOnItsWay, describeSendRefusal, type CodeDelivery } from '../mfa/delivery.js';
import { isSettingsVerified } from '../mfa/scopes.js';

/**
 * The settings step-up (issue 11), as GitHub's sudo mode: a signed-in session is not enough to
 * change the password, the phone, the email or to delete the account; it takes a fresh code in the
 * `settings` scope, sent to the account's own number, and lasts 5 minutes from that code, however
 * busy the person is. A login or admin code never counts (src/mfa/routes.ts keeps them apart).
 */
export const SETTINGS_PATH = '/account/security';

/** Pages of the account's settings outside /account/security that a confirmation may lead back to. */
const OTHER_SETTINGS_PAGES = ['/account/delete', '/account/recovery-codes'];

/** Where a confirmation may lead back to: a page of the account's own settings, nowhere else. */
export function settingsReturnPath(candidate: unknown): string {
  const path = toSafeReturnPath(candidate, SETTINGS_PATH);
  return path === SETTINGS_PATH ||
    path.startsWith(`${SETTINGS_PATH}/`) ||
    OTHER_SETTINGS_PAGES.some((page) => path.startsWith(page))
    ? path
    : SETTINGS_PATH;
}

/**
 * For the handlers of a change: passes only with a fresh settings code. Otherwise back to the
 * settings page, which offers to send one (a GET of a page behind it, or a form posted too late).
 */
export function requireFreshSettingsCode(clock: Clock): RequestHandler {
  return (req, res, next) => {
    const user = currentUserOf(res);
    if (user && isSettingsVerified(req.session, user.id, clock.now().getTime())) return next();
    req.session.flash = {
      kind: 'error',
      message: 'For your safety, confirm it is you with a new code before making this change.',
    };
    res.redirect(303, SETTINGS_PATH);
  };
}

export function createSettingsStepUpRouter(deps: {
  delivery: CodeDelivery;
  clock: Clock;
  stageFactors: StageFactors;
}): Router {
  const { delivery, clock } = deps;
  const router = Router();

  router.use(SETTINGS_PATH, noStore, requireSignedIn);

  /**
   * How "confirm it is you" will ask, for the pages that offer it (res.locals.settingsConfirmWith):
   * the account's default factor when it is a passkey or an app. Those send no code, so the pages
   * must not promise one.
   */
  router.use([SETTINGS_PATH, ...OTHER_SETTINGS_PAGES], async (req, res, next) => {
    const user = currentUserOf(res);
    if (user && !isSettingsVerified(req.session, user.id, clock.now().getTime())) {
      const preferred = delivery.deliverableChannel(req.session.channel ?? user.preferredChannel);
      const opening = await deps.stageFactors.opening(user, 'settings', preferred);
      res.locals.settingsConfirmWith = opening?.method ?? 'phone';
    }
    next();
  });

  /** "Confirm it is you": a settings code to the account's number, then the code page. */
  router.post(`${SETTINGS_PATH}/confirm`, async (req, res) => {
    const user = currentUserOf(res)!;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const returnTo = settingsReturnPath(body.returnTo);
    const preferred = delivery.deliverableChannel(req.session.channel ?? user.preferredChannel);
    delete req.session.pendingPhoneChange;
    // The code page now waits for this confirmation, not for an admin step-up left half done.
    delete req.session.pendingAdmin;
    req.session.pendingSettings = { userId: user.id, startedAt: clock.now().getTime(), returnTo };
    // The account's default factor: an app or a passkey sends nothing.
    const opening = await openStage(req.session, deps.stageFactors, user, 'settings', preferred);
    if (!('sendBy' in opening)) return res.redirect(303, '/verify');
    const outcome = await delivery.sendCode(req, { user, scope: 'settings', channel: opening.sendBy });
    if (!outcome.ok) {
      // Pressed twice: the code from a moment ago is on its way; wait for it on the code page.
      if (outcome.reason === 'cooldown' && outcome.pending) {
        req.session.flash = { kind: 'info', message: describeCodeOnItsWay(outcome.retryAfterSeconds) };
        return res.redirect(303, '/verify');
      }
      // Code entry paused or suspended, perhaps by a stranger who has the password: the owner
      // confirms with the passkey instead, to change that password (as the login lets them in).
      if (await openOnPasskeyWhileCodesPaused(req.session, deps.stageFactors, user, 'settings', outcome)) {
        return res.redirect(303, '/verify');
      }
      delete req.session.pendingSettings;
      if (!('retryAfterSeconds' in outcome)) {
        req.session.flash = { kind: 'error', message: describeSendRefusal(outcome) };
        return res.redirect(303, SETTINGS_PATH);
      }
      throw new TooManyRequestsError(describeSendRefusal(outcome), outcome.retryAfterSeconds, {
        href: SETTINGS_PATH,
        label: 'Back to your security settings',
      });
    }
    res.redirect(303, '/verify');
  });

  /** Leaves a settings confirmation or a new number's code half done. */
  router.post(`${SETTINGS_PATH}/cancel`, (req, res) => {
    delete req.session.pendingSettings;
    delete req.session.pendingPhoneChange;
    delete req.session.challengeId;
    res.redirect(303, SETTINGS_PATH);
  });

  return router;
}
