import { Router } from 'express';
import { currentUserOf, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { noStore } from '../http/security-headers.js';
import { describeChannel } from '../mfa/provider.js';
import { adminVerifiedUntil, isAdminVerified } from '../mfa/scopes.js';
import { maskPhone } from '../users/phone.js';

export function createAccountRouter(deps: { clock: Clock; adminScopeTtlMs: number }): Router {
  const router = Router();
  router.get('/account', noStore, requireSignedIn, (req, res) => {
    const user = currentUserOf(res)!;
    const now = deps.clock.now().getTime();
    const previousLoginAt = req.session.signedIn?.previousLoginAt ?? null;
    const channel = req.session.channel ?? user.preferredChannel;
    const flash = req.session.flash;
    delete req.session.flash;
    res.render('account', {
      title: 'Your account',
      user,
      maskedPhone: maskPhone(user.phone),
      channelLabel: describeChannel(channel),
      previousLoginAt: previousLoginAt === null ? null : new Date(previousLoginAt),
      adminVerifiedUntil: isAdminVerified(req.session, user.id, now, deps.adminScopeTtlMs)
        ? new Date(adminVerifiedUntil(req.session, deps.adminScopeTtlMs)!)
        : null,
      flash,
    });
  });
  return router;
}
