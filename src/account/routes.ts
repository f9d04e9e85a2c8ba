import { Router } from 'express';
import { currentUserOf, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { RECOVERY_CODES_LOW, type RecoveryCodes } from '../factors/recovery-codes.js';
import { noStore } from '../http/security-headers.js';
import { describeChannel } from '../mfa/provider.js';
import { adminVerifiedUntil, isAdminVerified } from '../mfa/scopes.js';
import { maskPhone } from '../users/phone.js';

export function createAccountRouter(deps: {
  clock: Clock;
  adminScopeTtlMs: number;
  recoveryCodes: Pick<RecoveryCodes, 'status'>;
}): Router {
  const router = Router();
  router.get('/account', noStore, requireSignedIn, async (req, res) => {
    const user = currentUserOf(res)!;
    const recovery = await deps.recoveryCodes.status(user.id);
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
      // Reminded while the account has no codes; warned when few are left.
      recoveryCodes: {
        none: recovery.total === 0,
        low: recovery.total > 0 && recovery.left <= RECOVERY_CODES_LOW,
        left: recovery.left,
      },
      flash,
    });
  });
  return router;
}
