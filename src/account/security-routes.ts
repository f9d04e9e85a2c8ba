import { Router } from 'express';
import { currentUserOf } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { describeChannel } from '../mfa/provider.js';
import { settingsVerifiedUntil } from '../mfa/scopes.js';
import { maskPhone } from '../users/phone.js';
import { SETTINGS_PATH } from './settings-step-up.js';

/**
 * /account/security: what protects the account, and the changes to it (issue 11). The guards
 * (signed in, no-store) come from the settings step-up router, mounted before this one.
 */
export function createSecurityRouter(deps: { clock: Clock }): Router {
  const router = Router();

  router.get(SETTINGS_PATH, (req, res) => {
    const user = currentUserOf(res)!;
    const now = deps.clock.now().getTime();
    const until = settingsVerifiedUntil(req.session, user.id, now);
    const flash = req.session.flash;
    delete req.session.flash;
    res.render('account/security', {
      title: 'Security settings',
      user,
      maskedPhone: maskPhone(user.phone),
      channelLabel: describeChannel(req.session.channel ?? user.preferredChannel),
      settingsVerifiedUntil: until === null ? null : new Date(until),
      flash,
    });
  });

  return router;
}
