import type { Logger } from '../logger.js';
import { Router, type Request, type Response } from 'express';
import type { ApiKeyStore } from '../api/keys.js';
import type { OneTimeTokenStore } from '../account/one-time-tokens.js';
import type { AuditLog } from '../audit/log.js';
import type { AccountSessions } from '../auth/account-sessions.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { FactorStore } from '../factors/store.js';
import type { RegistrationGuard } from '../fraud/registration-guard.js';
import type { SecondFactorReset } from '../factors/second-factor-reset.js';
import type { Notices } from '../notices/notices.js';
import { currentUserOf, isAdminUser, requireAdmin, requireSignedIn } from '../auth/guards.js';
import type { Clock } from '../clock.js';
import { openOnPasskeyWhileCodesPaused, openStage, type StageFactors } from '../factors/stage-factors.js';
import { TooManyRequestsError } from '../errors.js';
import { noStore } from '../http/security-headers.js';
import { describeCodeOnItsWay, describeSendRefusal, type CodeDelivery } from '../mfa/delivery.js';
import { describeChannel } from '../mfa/provider.js';
import { adminVerifiedUntil, isAdminVerified } from '../mfa/scopes.js';
import type { MfaService } from '../mfa/service.js';
import type { ProviderPool } from '../mfa/providers/pool.js';
import type { SendingStats } from '../fraud/stats.js';
import { maskPhone } from '../users/phone.js';
import type { UserStore } from '../users/store.js';
import { createAccountHelp } from './account-help.js';
import { createPhoneReplacement } from './phone-replacement.js';
import { ADMIN_ACTION_FRESHNESS_MS, FRESH_CODE_PATH, addAccountRoutes } from './account-routes.js';
import { createApiKeyManagement } from './api-key-management.js';
import { API_KEYS_PATH, addApiKeyRoutes } from './api-key-routes.js';

export interface AdminRouterDeps {
  logger: Logger;
  users: UserStore;
  /** Ends an account's sessions (end all sessions, disable). */
  accountSessions: AccountSessions;
  /** Forgotten with the sessions (end all sessions, disable), and listed before a reset of second factors. */
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll' | 'list'>;
  /** An account's apps and passkeys, counted before a reset of its second factors. */
  factors: Pick<FactorStore, 'listForUser'>;
  secondFactorReset: SecondFactorReset;
  /** Reset links, voided when an admin replaces a lost phone. */
  tokens: Pick<OneTimeTokenStore, 'voidAll'>;
  notices: Notices;
  /** Its counts are forgiven when an admin unlocks an account. */
  throttle: Pick<LoginThrottle, 'forgiveAccount'>;
  /** A number an admin puts on an account passes the rules of a person's own phone change. */
  registrations: Pick<RegistrationGuard, 'checkNumberForAccount'>;
  audit: AuditLog;
  mfa: MfaService;
  delivery: CodeDelivery;
  /** Their state on /admin; the channels they deliver bound a new API key's. */
  providers: Pick<ProviderPool, 'status' | 'channels'>;
  /** The verification API's keys (issue 13), made and revoked on /admin/api-keys. */
  apiKeys: ApiKeyStore;
  /** `kh_live_` keys in production, `kh_test_` elsewhere. */
  isProduction: boolean;
  /** The toll-fraud guard's "Sending" view (src/fraud/stats.ts). */
  sending: SendingStats;
  clock: Clock;
  adminScopeTtlMs: number;
  /** Which factors the step-up accepts (ADMIN_STEP_UP_FACTORS) and which the admin has. */
  stageFactors: StageFactors;
}

/**
 * The secure area. Being signed in is not enough: it takes a fresh code in the admin scope, and
 * that verification lasts a fixed time from the code, however active the admin is.
 */
export function createAdminRouter(deps: AdminRouterDeps): Router {
  const { users, audit, mfa, delivery, clock } = deps;
  const router = Router();

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

  /** The page that sends an admin code; `notice` says why one is asked for. */
  async function renderStepUp(req: Request, res: Response, notice: string | null) {
    const user = currentUserOf(res)!;
    const pending = await delivery.currentChallenge(req, { userId: user.id, scope: 'admin' });
    const hasLiveAdminCode = pending !== null && pending.closedAt === null && !mfa.isExpired(pending);
    const channel = delivery.deliverableChannel(req.session.channel ?? user.preferredChannel);
    // What the step-up will ask for: the strongest factor the admin has (ADMIN_STEP_UP_FACTORS).
    const opening = await deps.stageFactors.opening(user, 'admin', channel);
    res.render('admin/step-up', {
      title: 'Confirm it is you',
      opening: opening === null ? 'none' : opening.method,
      maskedPhone: maskPhone(user.phone),
      channelLabel: describeChannel(opening?.method === 'phone' ? opening.channel : channel),
      hasLiveAdminCode,
      expiredNotice: notice,
      ttlMinutes: Math.round(deps.adminScopeTtlMs / 60_000),
    });
  }

  router.get('/admin', async (req, res) => {
    const user = currentUserOf(res)!;
    const now = clock.now().getTime();
    if (!isAdminVerified(req.session, user.id, now, deps.adminScopeTtlMs)) {
      const wasVerified = req.session.adminVerified !== undefined;
      return renderStepUp(req, res, wasVerified ? 'Your secure-area verification has expired.' : null);
    }
    const [accounts, events] = await Promise.all([users.list(), audit.recent(100)]);
    res.render('admin/index', {
      title: 'Secure area',
      verifiedUntil: new Date(adminVerifiedUntil(req.session, deps.adminScopeTtlMs)!),
      accounts: accounts.map((account) => ({
        id: account.id,
        username: account.username,
        isDisabled: account.disabledAt !== null,
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

  // An action on an account needs a code from the last few minutes: this page asks for one, and
  // the code page sends the admin back to the action's page (returnTo) once it is entered.
  router.get(FRESH_CODE_PATH, (req, res) => {
    const what = req.session.returnTo?.startsWith(API_KEYS_PATH)
      ? { change: 'Changing API keys', back: 'the keys' }
      : { change: 'Changing an account', back: 'the account' };
    return renderStepUp(
      req,
      res,
      `${what.change} needs an admin code from the last ${Math.round(ADMIN_ACTION_FRESHNESS_MS / 60_000)} minutes. Send a fresh one; you will come back to ${what.back}.`,
    );
  });

  addAccountRoutes(router, {
    users,
    accountSessions: deps.accountSessions,
    rememberedBrowsers: deps.rememberedBrowsers,
    factors: deps.factors,
    mfa,
    help: createAccountHelp({
      users,
      accountSessions: deps.accountSessions,
      rememberedBrowsers: deps.rememberedBrowsers,
      secondFactorReset: deps.secondFactorReset,
      notices: deps.notices,
      mfa,
      throttle: deps.throttle,
      audit,
      logger: deps.logger,
    }),
    phoneReplacement: createPhoneReplacement({
      users,
      registrations: deps.registrations,
      accountSessions: deps.accountSessions,
      rememberedBrowsers: deps.rememberedBrowsers,
      secondFactorReset: deps.secondFactorReset,
      tokens: deps.tokens,
      notices: deps.notices,
      audit,
      logger: deps.logger,
    }),
    clock,
    adminScopeTtlMs: deps.adminScopeTtlMs,
  });

  addApiKeyRoutes(router, {
    apiKeys: deps.apiKeys,
    management: createApiKeyManagement({ apiKeys: deps.apiKeys, audit, isProduction: deps.isProduction }),
    users,
    providers: deps.providers,
    clock,
    adminScopeTtlMs: deps.adminScopeTtlMs,
  });

  router.post('/admin/step-up', async (req, res) => {
    const user = currentUserOf(res)!;
    const preferred = delivery.deliverableChannel(req.session.channel ?? user.preferredChannel);
    // The code page now waits for this step-up, not for a settings confirmation left half done.
    delete req.session.pendingSettings;
    delete req.session.pendingPhoneChange;
    const opening = await openStage(req.session, deps.stageFactors, user, 'admin', preferred);
    if ('nothingAccepted' in opening) {
      req.session.flash = {
        kind: 'error',
        message:
          'The secure area needs a passkey or an authenticator app, and this account has neither (a passkey that only asks for a touch, with no PIN, fingerprint or face, does not count). Add one in your security settings, then try again.',
      };
      return res.redirect(303, '/account');
    }
    req.session.pendingAdmin = { userId: user.id, startedAt: clock.now().getTime() };
    // The strongest factor the admin has: a passkey or an app sends nothing.
    if ('showFactor' in opening) return res.redirect(303, '/verify');
    const outcome = await delivery.sendCode(req, { user, scope: 'admin', channel: opening.sendBy });
    if (!outcome.ok) {
      // Pressed twice: the code from a moment ago is on its way; wait for it on the code page.
      if (outcome.reason === 'cooldown' && outcome.pending) {
        req.session.flash = { kind: 'info', message: describeCodeOnItsWay(outcome.retryAfterSeconds) };
        return res.redirect(303, '/verify');
      }
      // Code entry paused or suspended, perhaps by a stranger's wrong codes: the admin's passkey
      // (if the step-up takes one) still works, as at the login.
      if (await openOnPasskeyWhileCodesPaused(req.session, deps.stageFactors, user, 'admin', outcome)) {
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
