import express, { type Express } from 'express';
import { rateLimit } from 'express-rate-limit';
import { createAccountRouter } from './account/routes.js';
import { createAccountDeletion } from './account/deletion.js';
import { createDeletionRouter } from './account/deletion-routes.js';
import { createEmailRouter } from './account/email-routes.js';
import { createEmailVerification } from './account/email-verification.js';
import { createPasswordReset } from './account/password-reset.js';
import { createResetRouter } from './account/reset-routes.js';
import { createPasswordChange } from './account/password-change.js';
import { createPhoneChange } from './account/phone-change.js';
import { createSecurityLog } from './account/security-log.js';
import { createSecurityPage } from './account/security-page.js';
import { createSecurityRouter } from './account/security-routes.js';
import { createSecondStepRouter, createSecondStepView } from './account/second-step-routes.js';
import { createTwoStepLogin } from './account/two-step.js';
import { createRecoveryCodeRouter, recoveryCodesOfferPath } from './account/recovery-code-routes.js';
import { createFactorRouter } from './account/factor-routes.js';
import { createAccountSessionRouter } from './account/session-routes.js';
import { createSettingsStepUpRouter } from './account/settings-step-up.js';
import { createAdminRouter } from './admin/routes.js';
import { createApiDocsRouter } from './api/docs-routes.js';
import { apiNotFound } from './api/http.js';
import { createIdempotency } from './api/idempotency.js';
import { createKeyConversion } from './api/key-conversion.js';
import { sendProblem } from './api/problem.js';
import { createApiRouter } from './api/routes.js';
import { createSampleRouter } from './api/sample-routes.js';
import { createApiVerifications } from './api/verifications.js';
import { createSignedInLoader } from './auth/guards.js';
import { createKnownDevices } from './auth/known-device.js';
import { createLoginThrottle } from './auth/login-throttle.js';
import { createRememberedBrowsers } from './auth/remembered-browsers.js';
import { createAuthRouter } from './auth/routes.js';
import { createAnonymousFormPages } from './auth/form-pages.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { createEmailComposer } from './email/compose.js';
import type { Mailer } from './email/mailer.js';
import { createNotices } from './notices/notices.js';
import { createRecoveryCodes } from './factors/recovery-codes.js';
import type { FactorSecrets } from './factors/secrets.js';
import { createTotp } from './factors/totp.js';
import { createAppEnrolmentRouter } from './factors/totp-routes.js';
import { createPasskeyRouter } from './factors/passkey-routes.js';
import { PASSKEY_BROWSER_SCRIPT_PATH, createPasskeyBrowserScriptHandler } from './factors/passkey-script.js';
import { createPasskeySection } from './factors/passkey-section.js';
import { createPasskeys } from './factors/passkeys.js';
import { createFraudGuard } from './fraud/index.js';
import { createOutboxRouter, type Outbox } from './dev/outbox.js';
import { clientKeyOfRequest, createClientAddress } from './http/client-address.js';
import { createCsrfProtection } from './http/csrf.js';
import { createErrorHandler, notFoundHandler } from './http/error-pages.js';
import { createHealthCheck } from './http/healthz.js';
import { createFloodGuardStore, type RateLimitStore } from './http/rate-limit.js';
import { reachableByPath } from './http/reachable-by-path.js';
import { createRequestLog } from './http/request-log.js';
import { createSecurityHeaders } from './http/security-headers.js';
import { createViewEngine } from './http/view-engine.js';
import { createSessionMiddleware, sessionCookieName } from './http/session.js';
import { formatTime } from './http/time-format.js';
import type { Logger } from './logger.js';
import { createEnrolment } from './auth/enrolment.js';
import { createCodeDelivery } from './mfa/delivery.js';
import type { ProviderPool } from './mfa/providers/pool.js';
import { createSignalWireVoiceRouter } from './mfa/providers/signalwire-voice-route.js';
import { createMfaRouter } from './mfa/routes.js';
import { createVerificationCompleter } from './factors/complete-verification.js';
import { createStageFactors, type FactorCheckers } from './factors/stage-factors.js';
import { DEFAULT_MFA_RULES, createMfaService } from './mfa/service.js';
import { PUBLIC_DIR, VIEWS_DIR } from './paths.js';
import { SITE_NAME } from './site.js';
import type { Stores } from './stores/index.js';
import type { PasswordHasher } from './users/passwords.js';

export interface AppDeps {
  config: Config;
  /** Every store, from createStores (src/stores/index.ts): the database, and Redis when configured. */
  stores: Stores;
  clock: Clock;
  logger: Logger;
  hasher: PasswordHasher;
  providers: ProviderPool;
  /**
   * Delivers the site's emails (createMailer, src/email/index.ts: console or SMTP). Routers that
   * send email take it as a dependency, with a composer from createEmailComposer (src/email/compose.ts).
   */
  mailer: Mailer;
  /** Seals authenticator-app secrets and keys recovery-code digests (FACTOR_ENCRYPTION_KEY; src/factors/secrets.ts). */
  factorSecrets: FactorSecrets;
  /** The console provider's and mailer's outbox; /dev/outbox is mounted only outside production. */
  outbox?: Outbox;
}

export { SITE_NAME };

const FLOOD_WINDOW_MS = 60_000;

/**
 * The paths the verification API answers (routes.ts, sample-routes.ts), in any case: Express
 * routes ignore it, so /REQUEST-AUTH is the API too.
 */
const isApiPath = (path: string) => {
  const lower = path.toLowerCase();
  return (
    lower === '/api' || lower.startsWith('/api/') || lower === '/request-auth' || lower === '/validate-auth'
  );
};

function createFloodGuard(options: {
  name: string;
  limits: RateLimitStore;
  limit: number;
  skip: (req: express.Request) => boolean;
}) {
  return rateLimit({
    windowMs: FLOOD_WINDOW_MS,
    store: createFloodGuardStore(options.limits, options.name, FLOOD_WINDOW_MS),
    limit: options.limit,
    skip: options.skip,
    // The same client key as every other per-address limit: an IPv6 client by its /64.
    keyGenerator: (req) => clientKeyOfRequest(req),
    // That key already groups IPv6 by prefix, which is what this check (ERR_ERL_KEY_GEN_IPV6) asks
    // for; it only guesses so from the function's source text. Every other check stays on.
    validate: { keyGeneratorIpFallback: false },
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (req, res) => {
      // The API's callers read problem documents, not pages.
      if (isApiPath(req.path)) {
        return sendProblem(res.set('Cache-Control', 'no-store'), 'too-many-requests', {
          detail: 'Too many requests from your address. Wait a minute and try again.',
          retryAfterSeconds: 60,
        });
      }
      res
        .status(429)
        .set('Retry-After', '60')
        .render('errors/429', {
          title: 'Slow down',
          status: 429,
          error: { safeMessage: 'Too many requests from your address. Wait a minute and try again.' },
        });
    },
  });
}

/** The composition root: reading it top to bottom shows every middleware in order. */
export function createApp(deps: AppDeps): Express {
  const { config, clock, logger, stores } = deps;
  const app = express();
  const channelCookie = {
    name: config.isProduction ? '__Host-mfa.channel' : 'mfa.channel',
    secure: config.isProduction,
  };

  app.set('trust proxy', config.trustProxy);
  // EJS, with includes that copy nothing (src/http/view-engine.ts). In production each template,
  // includes too, is compiled once and kept (not read and compiled per render).
  app.engine('ejs', createViewEngine({ root: VIEWS_DIR, keepCompiled: config.isProduction }));
  app.set('view engine', 'ejs');
  app.set('views', VIEWS_DIR);
  app.set('view cache', config.isProduction);
  app.disable('x-powered-by');
  // No ETag on pages: each carries its own CSRF token (and most are no-store), so a tag would never
  // match, and hashing every page to make one cost CPU on each (issue 10). Files under /assets keep
  // theirs (express.static makes its own).
  app.set('etag', false);
  app.locals.siteName = SITE_NAME;
  app.locals.isProduction = config.isProduction;
  // views/partials/time.ejs: one formatter per shape, built once (src/http/time-format.ts).
  app.locals.formatTime = formatTime;

  // First of all, so that everything after it (request log, limits, audit) reads a checked req.ip.
  app.use(createClientAddress({ logger }));
  app.use(createRequestLog(logger));
  app.use(createSecurityHeaders(config.isProduction));
  app.use('/assets', express.static(PUBLIC_DIR, { index: false, maxAge: config.isProduction ? '1d' : 0 }));
  // The passkey library for browsers, from its package: served here, as no other origin may be.
  app.get(PASSKEY_BROWSER_SCRIPT_PATH, createPasskeyBrowserScriptHandler(config.isProduction));

  app.get(
    '/healthz',
    createHealthCheck({
      health: stores.health,
      providers: deps.providers,
      isProduction: config.isProduction,
      token: config.healthzToken,
    }),
  );

  // Coarse flood guards per address (RATE_LIMIT_*_PER_MINUTE), under the finer rules (login
  // throttle, code limits). Page views count too: they cost CPU, though a visitor without a
  // session costs no stored state. A guard set to 0 is not mounted at all: no counter round trip.
  const { requestsPerMinute, postsPerMinute } = config.floodGuards;
  if (requestsPerMinute > 0) {
    app.use(
      createFloodGuard({
        name: 'requests',
        limits: stores.limits,
        limit: requestsPerMinute,
        skip: () => false,
      }),
    );
  }
  if (postsPerMinute > 0) {
    app.use(
      createFloodGuard({
        name: 'posts',
        limits: stores.limits,
        limit: postsPerMinute,
        skip: (req) => req.method !== 'POST',
      }),
    );
  }

  // Stateless tokens: a visitor's login or registration form writes no session (issue 10).
  const csrf = createCsrfProtection({ secret: config.sessionSecret, isProduction: config.isProduction });
  // A new visitor's login and registration forms, before the session middleware: the same page for
  // everyone but its CSRF token, rendered once (src/auth/form-pages.ts). Any other request for
  // them (a session cookie, a query string) goes on to the routes below.
  app.use(
    createAnonymousFormPages({
      channels: () => deps.providers.channels(),
      render: (view, locals) =>
        new Promise((resolve, reject) =>
          app.render(view, locals, (error, html) => (error ? reject(error) : resolve(html))),
        ),
      csrfTokenFor: csrf.tokenFor,
      sessionCookieName: sessionCookieName(config.isProduction),
      channelCookieName: channelCookie.name,
      keepRendered: config.isProduction,
    }),
  );

  // The toll-fraud guard (issue 8): every send and every registration passes it, the API's too.
  const fraud = createFraudGuard({
    limits: stores.limits,
    clock,
    config: config.fraud,
    audit: stores.audit,
    logger,
    store: stores.sending,
    accountsWithPhone: (phone) => stores.users.countProvenByPhone(phone),
  });
  const mfaRules = { ...DEFAULT_MFA_RULES, codeTtlMs: config.codeTtlMinutes * 60_000 };

  // The verification API (issue 13), before the site's body parser, session and CSRF: a bearer key
  // is its only credential, so no cookie is read or set under /api/ nor on the voice sample's two
  // routes. It parses its own bodies and answers its errors with problem documents.
  const apiVerifications = createApiVerifications({
    verifications: stores.apiVerifications,
    providers: deps.providers,
    limits: stores.limits,
    sendGuard: fraud.sends,
    audit: stores.audit,
    clock,
    rules: mfaRules,
    keySendsPerHour: config.apiKeySendsPerHour,
    keyConversion: createKeyConversion({
      limits: stores.limits,
      sending: stores.sending,
      clock,
      audit: stores.audit,
      logger,
      budgetPerDay: config.fraud.budgetPerDay,
      enforcing: config.fraud.mode !== 'record',
    }),
  });
  const apiDeps = {
    apiKeys: stores.apiKeys,
    verifications: apiVerifications,
    clock,
    logger,
    codeDigits: config.codeDigits,
  };
  // The API's reference (/api/openapi.yaml, /api/docs): public, so before the API's bearer check on
  // /api/, and before the session: reading the docs makes no session and sets no cookie.
  // Each feature router is mounted behind reachableByPath (src/http/reachable-by-path.ts): a request
  // whose first path segment none of its routes or middleware can match goes past it untried, in the
  // same order as before (issue 10).
  app.use(reachableByPath(createApiDocsRouter({ isProduction: config.isProduction, logger })));
  app.use(
    reachableByPath(
      createApiRouter({
        ...apiDeps,
        idempotency: createIdempotency({ store: stores.idempotency, clock, limits: stores.limits }),
      }),
    ),
  );
  // Any other /api/ path.
  app.use('/api', apiNotFound);
  app.use(reachableByPath(createSampleRouter(apiDeps)));

  app.use(express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }));

  // SignalWire fetches a call's document with neither session nor CSRF token: the one-time id is the credential.
  if (config.providers.some((provider) => provider.name === 'signalwire')) {
    app.use(reachableByPath(createSignalWireVoiceRouter(stores.voiceDocuments)));
  }

  app.use(
    createSessionMiddleware({
      secret: config.sessionSecret,
      store: stores.sessions,
      isProduction: config.isProduction,
    }),
  );
  app.use(createSignedInLoader({ users: stores.users, clock }));

  app.use(csrf.exposeToken);
  app.use(csrf.protect);

  // Emails (issue 11): security notices, and the links that prove an address.
  const composer = createEmailComposer({ name: SITE_NAME, publicUrl: config.publicUrl });
  const notices = createNotices({
    mailer: deps.mailer,
    composer,
    limits: stores.limits,
    audit: stores.audit,
    clock,
    logger,
  });
  const mfa = createMfaService({
    providers: deps.providers,
    challenges: stores.challenges,
    limits: stores.limits,
    clock,
    rules: mfaRules,
    audit: stores.audit,
    sendGuard: fraud.sends,
    ceiling: stores.ceiling,
    logger,
    onCodeEntryPaused: async (userId, how) => {
      const user = await stores.users.findById(userId);
      if (user) {
        await notices.notify({ type: how === 'paused' ? 'code_entry_paused' : 'code_entry_suspended', user });
      }
    },
  });
  const delivery = createCodeDelivery(mfa);
  // Second factors (issue 12): which each stage accepts (and the account has), and the checkers of
  // the factors the site verifies itself.
  const recoveryCodes = createRecoveryCodes({
    store: stores.recoveryCodes,
    secrets: deps.factorSecrets,
    clock,
  });
  const totp = createTotp({
    factors: stores.factors,
    secrets: deps.factorSecrets,
    clock,
    issuer: SITE_NAME,
    logger,
  });
  // Passkeys (issue 12): PUBLIC_URL is the relying party, its host the rpID, its origin the only one accepted.
  const passkeys = createPasskeys({
    factors: stores.factors,
    clock,
    rpId: config.publicHost,
    rpName: SITE_NAME,
    origin: config.publicUrl,
    logger,
  });
  const checkers: FactorCheckers = { recoveryCodes, totp, passkeys };
  const stageFactors = createStageFactors({
    factors: stores.factors,
    checkers,
    channels: () => delivery.channels(),
    adminStepUpFactors: config.factors.adminStepUpFactors,
  });
  const throttle = createLoginThrottle({ limits: stores.limits, clock });
  const knownDevices = createKnownDevices({
    secret: config.sessionSecret,
    clock,
    isProduction: config.isProduction,
  });
  // "Remember this browser" (issue 12): logins from it skip the code for 30 days; never a step-up.
  const rememberedBrowsers = createRememberedBrowsers({
    store: stores.rememberedBrowsers,
    users: stores.users,
    audit: stores.audit,
    clock,
    isProduction: config.isProduction,
  });
  // MFA_POLICY=optional: people who are not admins may turn the second step off.
  const twoStep = createTwoStepLogin({
    policy: config.factors.policy,
    users: stores.users,
    rememberedBrowsers,
    audit: stores.audit,
    notices,
  });
  const adminScopeTtlMs = config.adminScopeTtlMinutes * 60_000;
  const enrolment = createEnrolment({ limits: stores.limits, delivery, audit: stores.audit, clock });
  const emailVerification = createEmailVerification({
    users: stores.users,
    tokens: stores.tokens,
    mailer: deps.mailer,
    composer,
    limits: stores.limits,
    notices,
    audit: stores.audit,
    clock,
    logger,
    siteName: SITE_NAME,
  });

  const passwordReset = createPasswordReset({
    users: stores.users,
    tokens: stores.tokens,
    mailer: deps.mailer,
    composer,
    limits: stores.limits,
    audit: stores.audit,
    clock,
    logger,
    siteName: SITE_NAME,
    hasher: deps.hasher,
    // Every session of the account, on every instance (the session stores index them by account).
    sessions: stores.accountSessions,
    rememberedBrowsers,
    notices,
  });

  // Second factors (issue 12): which each stage accepts, and the one module that finishes a stage
  // (the login's code page, and POST /login when no code is needed).
  const completer = createVerificationCompleter({
    users: stores.users,
    audit: stores.audit,
    clock,
    throttle,
    knownDevices,
    channelCookie,
    registrations: fraud.registrations,
    emailVerification,
    notices,
    hooks: {
      // "Remember this browser for 30 days", ticked on the login's code page.
      rememberBrowser: (req, res, user) => rememberedBrowsers.remember(req, res, user),
      phoneChanged: async (userId) => {
        await rememberedBrowsers.revokeAll(userId, 'phone number changed');
      },
      // An account without recovery codes is offered them once, right after a login.
      afterLoginPath: async (user) => recoveryCodesOfferPath(user, await recoveryCodes.status(user.id)),
      // A recovery code let the person in: the notice says how many are left.
      recoveryCodeUsed: async (req, user) => {
        const left = await recoveryCodes.remaining(user.id);
        await notices.notify({ type: 'recovery_code_used', user, ip: req.ip, left });
      },
    },
  });
  app.use(
    reachableByPath(
      createAuthRouter({
        users: stores.users,
        hasher: deps.hasher,
        throttle,
        knownDevices,
        delivery,
        registrations: fraud.registrations,
        audit: stores.audit,
        clock,
        isProduction: config.isProduction,
        logger,
        channelCookie,
        enrolment,
        stageFactors,
        completer,
        rememberedBrowsers,
        mfaPolicy: config.factors.policy,
      }),
    ),
  );
  app.use(
    reachableByPath(
      createMfaRouter({
        enrolment,
        completer,
        notices,
        stageFactors,
        checkers,
        offerRememberBrowser: true,
        isProduction: config.isProduction,
        logger,
        registrations: fraud.registrations,
        users: stores.users,
        mfa,
        delivery,
        throttle,
        knownDevices,
        audit: stores.audit,
        clock,
        codeDigits: config.codeDigits,
        channelCookie,
      }),
    ),
  );
  app.use(reachableByPath(createAccountRouter({ clock, adminScopeTtlMs, recoveryCodes })));
  // /account/security: the settings step-up first (it guards the path), then the page and its changes.
  app.use(reachableByPath(createSettingsStepUpRouter({ delivery, clock, stageFactors })));
  const securityPage = createSecurityPage({
    delivery,
    sessions: stores.accountSessions,
    securityLog: createSecurityLog({ audit: stores.audit, clock }),
    secondStep: createSecondStepView({ rememberedBrowsers, twoStep }),
    recoveryCodes,
    passkeySection: createPasskeySection(stores.factors),
    clock,
    factors: stores.factors,
  });
  app.use(
    reachableByPath(
      createFactorRouter({
        page: securityPage,
        users: stores.users,
        factors: stores.factors,
        delivery,
        notices,
        audit: stores.audit,
        clock,
        adminStepUpFactors: config.factors.adminStepUpFactors,
        stageFactors,
        // A factor removed: every remembered browser must prove a second factor again.
        onFactorRemoved: async (userId) => {
          await rememberedBrowsers.revokeAll(userId, 'a second factor removed');
        },
      }),
    ),
  );
  app.use(
    reachableByPath(
      createSecurityRouter({
        page: securityPage,
        users: stores.users,
        delivery,
        enrolment,
        passwordChange: createPasswordChange({
          users: stores.users,
          hasher: deps.hasher,
          limits: stores.limits,
          sessions: stores.accountSessions,
          rememberedBrowsers,
          tokens: stores.tokens,
          audit: stores.audit,
          notices,
          clock,
        }),
        phoneChange: createPhoneChange({ registrations: fraud.registrations, limits: stores.limits, clock }),
        emailVerification,
        notices,
        audit: stores.audit,
        clock,
      }),
    ),
  );
  app.use(
    reachableByPath(
      createPasskeyRouter({ passkeys, factors: stores.factors, notices, audit: stores.audit, clock }),
    ),
  );
  // /account/recovery-codes: the set, a new one behind a settings code, and the offer after a login.
  app.use(
    reachableByPath(
      createRecoveryCodeRouter({ recoveryCodes, users: stores.users, notices, audit: stores.audit, clock }),
    ),
  );
  app.use(
    reachableByPath(
      createAccountSessionRouter({
        page: securityPage,
        sessions: stores.accountSessions,
        rememberedBrowsers,
        audit: stores.audit,
      }),
    ),
  );
  app.use(
    reachableByPath(
      createSecondStepRouter({ page: securityPage, rememberedBrowsers, twoStep, audit: stores.audit, clock }),
    ),
  );
  // /account/security/app: an authenticator app, set up after a fresh settings code.
  app.use(
    reachableByPath(
      createAppEnrolmentRouter({
        totp,
        factors: stores.factors,
        secrets: deps.factorSecrets,
        notices,
        audit: stores.audit,
        clock,
        issuer: SITE_NAME,
      }),
    ),
  );
  // /account/delete: after a settings code, the typed name, then the emailed link in this browser.
  app.use(
    reachableByPath(
      createDeletionRouter({
        deletion: createAccountDeletion({
          users: stores.users,
          tokens: stores.tokens,
          audit: stores.audit,
          mailer: deps.mailer,
          composer,
          limits: stores.limits,
          accountSessions: stores.accountSessions,
          clock,
          logger,
          siteName: SITE_NAME,
        }),
        clock,
        isProduction: config.isProduction,
        logger,
      }),
    ),
  );
  app.use(reachableByPath(createEmailRouter({ verification: emailVerification })));
  // A forgotten password: a link by email, then a reset code to the phone (the code page's reset stage).
  app.use(
    reachableByPath(
      createResetRouter({
        reset: passwordReset,
        delivery,
        clock,
        logger,
        isProduction: config.isProduction,
        stageFactors,
      }),
    ),
  );
  app.use(
    reachableByPath(
      createAdminRouter({
        logger,
        users: stores.users,
        accountSessions: stores.accountSessions,
        rememberedBrowsers,
        factors: stores.factors,
        secondFactorReset: stores.secondFactorReset,
        tokens: stores.tokens,
        notices,
        throttle,
        registrations: fraud.registrations,
        audit: stores.audit,
        mfa,
        delivery,
        providers: deps.providers,
        apiKeys: stores.apiKeys,
        isProduction: config.isProduction,
        sending: fraud.stats,
        clock,
        adminScopeTtlMs,
        stageFactors,
      }),
    ),
  );
  // It lists real codes, so it exists only where no real person's codes are sent.
  if (!config.isProduction && deps.outbox) app.use(reachableByPath(createOutboxRouter(deps.outbox)));

  app.use(notFoundHandler);
  app.use(createErrorHandler(logger));
  return app;
}
