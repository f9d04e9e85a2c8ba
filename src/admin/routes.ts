import { Router } from 'express';
import type { AuditLog } from '../audit/log.js';
import { currentUserOf, isAdminUser, requireAdmin, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { TooManyRequestsError } from '../errors.js';
import { noStore } from '../http/security-headers.js';
import { describeCodeOnItsWay, describeSendRefusal, type CodeDelivery } from '../mfa/delivery.js';
import { describeChannel, type Channel } from '../mfa/provider.js';
import { adminVerifiedUntil, isAdminVerified } from '../mfa/scopes.js';
import type { MfaService } from '../mfa/service.js';
import type { ProviderPool } from '../mfa/providers/pool.js';
import type { SendingStats } from '../fraud/stats.js';
import { maskPhone } from '../users/phone.js';
import type { UserStore } from '../users/store.js';

export interface AdminRouterDeps {
  users: UserStore;
  audit: AuditLog;
  mfa: MfaService;
  delivery: CodeDelivery;
  providers: Pick<ProviderPool, 'status'>;
  /** The toll-fraud guard's "Sending" view (src/fraud/stats.ts). */
  sending: SendingStats;
  clock: Clock;
  adminScopeTtlMs: number;
}

/**
 * The secure area. Being signed in is not enough: it takes a fresh code in the admin scope, and
 * that verification lasts a fixed time from the code, however active the admin is.
 */
export function createAdminRouter(deps: AdminRouterDeps): Router {
  const { users, audit, mfa, delivery, clock } = deps;
  const router = Router();
  // The session's channel, unless no configured provider delivers by it any more.
  const deliverableChannel = (preferred: Channel): Channel =>
    mfa.channels().includes(preferred) ? preferred : (mfa.channels()[0] ?? preferred);

  router.use(
    '/admin',
    noStore,
    requireSignedIn,
    async (req, res, next) => {
      const user = currentUserOf(res)!;
      if (!res.locals.isAdmin)
        await audit.record({ type: 'admin_denied', userId: user.id, username: user.username, ip: req.ip });
      next();
    },
    requireAdmin,
  );

  router.get('/admin', async (req, res) => {
    const user = currentUserOf(res)!;
    const now = clock.now().getTime();
    if (!isAdminVerified(req.session, user.id, now, deps.adminScopeTtlMs)) {
      const pending = await delivery.currentChallenge(req, { userId: user.id, scope: 'admin' });
      const hasLiveAdminCode = pending !== null && pending.closedAt === null && !mfa.isExpired(pending);
      const channel = deliverableChannel(req.session.channel ?? user.preferredChannel);
      const wasVerified = req.session.adminVerified !== undefined;
      return res.render('admin/step-up', {
        title: 'Confirm it is you',
        maskedPhone: maskPhone(user.phone),
        channelLabel: describeChannel(channel),
        hasLiveAdminCode,
        expiredNotice: wasVerified ? 'Your secure-area verification has expired.' : null,
        ttlMinutes: Math.round(deps.adminScopeTtlMs / 60_000),
      });
    }
    const [accounts, events] = await Promise.all([users.list(), audit.recent(100)]);
    res.render('admin/index', {
      title: 'Secure area',
      verifiedUntil: new Date(adminVerifiedUntil(req.session, deps.adminScopeTtlMs)!),
      accounts: accounts.map((account) => ({
        username: account.username,
        maskedPhone: maskPhone(account.phone),
        createdAt: account.createdAt,
        lastLoginAt: account.lastLoginAt,
        isAdmin: isAdminUser(account),
      })),
      events,
      providers: await deps.providers.status(),
      sending: await deps.sending.summary(),
    });
  });

  router.post('/admin/step-up', async (req, res) => {
    const user = currentUserOf(res)!;
    const channel = deliverableChannel(req.session.channel ?? user.preferredChannel);
    // The code page now waits for this code, not for a settings confirmation left half done.
    delete req.session.pendingSettings;
    delete req.session.pendingPhoneChange;
    const outcome = await delivery.sendCode(req, { user, scope: 'admin', channel });
    if (!outcome.ok) {
      // Pressed twice: the code from a moment ago is on its way; wait for it on the code page.
      if (outcome.reason === 'cooldown' && outcome.pending) {
        req.session.flash = { kind: 'info', message: describeCodeOnItsWay(outcome.retryAfterSeconds) };
        return res.redirect(303, '/verify');
      }
      if (!('retryAfterSeconds' in outcome)) {
        // Not a matter of waiting (no provider delivers at all, a refused number, code entry
        // suspended): say so where the person came from.
        req.session.flash = { kind: 'error', message: describeSendRefusal(outcome) };
        return res.redirect(303, '/account');
      }
      throw new TooManyRequestsError(describeSendRefusal(outcome), outcome.retryAfterSeconds, {
        href: '/account',
        label: 'Back to your account',
      });
    }
    res.redirect(303, '/verify');
  });

  return router;
}
