import { Router, type RequestHandler } from 'express';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf } from '../auth/guards.js';
import type { RememberedBrowserSummary, RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { Clock } from '../clock.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import { parseForm } from '../http/validate.js';
import type { User } from '../users/store.js';
import { forgetBrowserSchema, twoStepSchema } from './schemas.js';
import type { SecurityPage } from './security-page.js';
import { SETTINGS_PATH, requireFreshSettingsCode } from './settings-step-up.js';
import { isTwoStepChoiceOffered, type TwoStepLogin } from './two-step.js';

/**
 * The second step of the login on /account/security (issue 12): the remembered browsers, each
 * forgotten on its own or all at once, and (MFA_POLICY=optional, not for admins) the switch that
 * turns two-step login off or on. Forgetting a browser only takes access away, as ending a session
 * does, so it needs no code; the switch needs a fresh settings code either way.
 */

/** What the security page shows of it (views/account/security-remembered.ejs, security-two-step.ejs). */
export interface SecondStepView {
  rememberedBrowsers: RememberedBrowserSummary[];
  /** null: no switch for this account (MFA_POLICY=required, or an admin). */
  twoStep: { isOff: boolean; offSince: Date | null } | null;
}

export function createSecondStepView(deps: {
  rememberedBrowsers: Pick<RememberedBrowsers, 'list'>;
  twoStep: Pick<TwoStepLogin, 'policy'>;
}): (user: User) => Promise<SecondStepView> {
  return async (user) => ({
    rememberedBrowsers: await deps.rememberedBrowsers.list(user.id),
    twoStep: isTwoStepChoiceOffered(user, deps.twoStep.policy)
      ? { isOff: user.twoFactorOffAt !== null, offSince: user.twoFactorOffAt }
      : null,
  });
}

export const TWO_STEP_PATH = `${SETTINGS_PATH}/two-step`;

export function createSecondStepRouter(deps: {
  page: SecurityPage;
  rememberedBrowsers: RememberedBrowsers;
  twoStep: TwoStepLogin;
  audit: AuditLog;
  clock: Clock;
}): Router {
  const { page, rememberedBrowsers, twoStep, audit } = deps;
  const router = Router();

  router.post(`${SETTINGS_PATH}/remembered-browsers/forget`, async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(forgetBrowserSchema, req.body);
    if (!form.ok) {
      req.session.flash = { kind: 'error', message: form.errors[0]!.message };
      return page.render(req, res, { status: 400 });
    }
    const forgotten = await rememberedBrowsers.revoke(user.id, form.data.browser);
    if (forgotten) {
      await audit.record({
        type: 'remembered_browser_forgotten',
        userId: user.id,
        username: user.username,
        ip: req.ip,
      });
    }
    req.session.flash = forgotten
      ? { kind: 'info', message: 'That browser is forgotten: its next login asks for a code.' }
      : { kind: 'error', message: 'That browser was already forgotten.' };
    res.redirect(303, SETTINGS_PATH);
  });

  router.post(`${SETTINGS_PATH}/remembered-browsers/forget-all`, async (req, res) => {
    const user = currentUserOf(res)!;
    const count = await rememberedBrowsers.revokeAll(user.id, 'forgotten on the security page');
    req.session.flash = {
      kind: 'info',
      message:
        count === 0
          ? 'No browser was remembered.'
          : `${count} ${count === 1 ? 'browser is' : 'browsers are'} forgotten: their next logins ask for a code.`,
    };
    res.redirect(303, SETTINGS_PATH);
  });

  /** Refused before the code is asked for: there is no switch to confirm. */
  const offeredToThisAccount: RequestHandler = (_req, res, next) => {
    const user = currentUserOf(res)!;
    if (twoStep.policy !== 'optional') return next(new NotFoundError());
    if (!isTwoStepChoiceOffered(user, twoStep.policy)) {
      return next(
        new ForbiddenError('An admin’s account always asks for a second step at login.', {
          href: SETTINGS_PATH,
          label: 'Back to your security settings',
        }),
      );
    }
    next();
  };

  router.post(TWO_STEP_PATH, offeredToThisAccount, requireFreshSettingsCode(deps.clock), async (req, res) => {
    const user = currentUserOf(res)!;
    const form = parseForm(twoStepSchema, req.body);
    if (!form.ok) {
      // Only a tampered form gets here (its one field is hidden): said at the top, as for sessions.
      req.session.flash = { kind: 'error', message: form.errors[0]!.message };
      return page.render(req, res, { status: 400 });
    }
    const off = form.data.two_step === 'off';
    const changed = await twoStep.set({ user, off, ip: req.ip });
    req.session.flash = {
      kind: 'info',
      message: !changed
        ? `Two-step login is already ${off ? 'off' : 'on'}.`
        : off
          ? 'Two-step login is off: your password alone logs you in. Every remembered browser was forgotten.'
          : 'Two-step login is on: each login asks for a code after your password.',
    };
    res.redirect(303, SETTINGS_PATH);
  });

  return router;
}
