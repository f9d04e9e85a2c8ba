import express, { type Express } from 'express';
import { rateLimit } from 'express-rate-limit';
import type session from 'express-session';
import { createAccountRouter } from './account/routes.js';
import { createAdminRouter } from './admin/routes.js';
import type { AuditLog } from './audit/log.js';
import { createSignedInLoader } from './auth/guards.js';
import { createKnownDevices } from './auth/known-device.js';
import { createLoginThrottle } from './auth/login-throttle.js';
import { createAuthRouter } from './auth/routes.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { createFraudGuard } from './fraud/index.js';
import type { SendingStore } from './fraud/store.js';
import { createOutboxRouter, type Outbox } from './dev/outbox.js';
import { clientKeyOfRequest, createClientAddress } from './http/client-address.js';
import { createCsrfProtection } from './http/csrf.js';
import { createErrorHandler, notFoundHandler } from './http/error-pages.js';
import { createHealthCheck } from './http/healthz.js';
import type { RateLimitStore } from './http/rate-limit.js';
import { createRequestLog } from './http/request-log.js';
import { createSecurityHeaders } from './http/security-headers.js';
import { createSessionMiddleware } from './http/session.js';
import type { RetiringSessionStore } from './http/session-store.js';
import type { Logger } from './logger.js';
import type { ChallengeStore } from './mfa/challenge-store.js';
import type { CodeEntryCeiling } from './mfa/code-entry-ceiling.js';
import { createCodeDelivery } from './mfa/delivery.js';
import type { ProviderPool } from './mfa/providers/pool.js';
import {
  createSignalWireVoiceRouter,
  type VoiceDocumentStore,
} from './mfa/providers/signalwire-voice-route.js';
import { createMfaRouter } from './mfa/routes.js';
import { DEFAULT_MFA_RULES, createMfaService } from './mfa/service.js';
import { PUBLIC_DIR, VIEWS_DIR } from './paths.js';
import { SITE_NAME } from './site.js';
import type { SqlDatabase } from './stores/sql/database.js';
import type { PasswordHasher } from './users/passwords.js';
import type { UserStore } from './users/store.js';

export interface AppDeps {
  config: Config;
  /** Only asked whether it answers, for /healthz; the stores below hold their own handle. */
  database: Pick<SqlDatabase, 'isHealthy'>;
  users: UserStore;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  hasher: PasswordHasher;
  providers: ProviderPool;
  limits: RateLimitStore;
  challenges: ChallengeStore;
  sessionStore: RetiringSessionStore;
  /** The toll-fraud guard's durable facts: numbers that completed a code, sends per country and hour. */
  sending: SendingStore;
  /** Wrong codes in a row per account, and the suspension at the ceiling. */
  ceiling: CodeEntryCeiling;
  /** The console provider's outbox; /dev/outbox is mounted only outside production. */
  outbox?: Outbox;
  /** The spoken documents of SignalWire calls; when given, SignalWire can fetch them (see below). */
  voiceDocuments?: VoiceDocumentStore;
  /** Requests per minute per address, all methods, then form posts only: coarse flood guards. */
  requestsPerMinute?: number;
  postsPerMinute?: number;
}

export { SITE_NAME };

function createFloodGuard(options: { limit: number; skip: (req: express.Request) => boolean }) {
  return rateLimit({
    windowMs: 60_000,
    limit: options.limit,
    skip: options.skip,
    // The same client key as every other per-address limit: an IPv6 client by its /64.
    keyGenerator: (req) => clientKeyOfRequest(req),
    // That key already groups IPv6 by prefix, which is what this check (ERR_ERL_KEY_GEN_IPV6) asks
    // for; it only guesses so from the function's source text. Every other check stays on.
    validate: { keyGeneratorIpFallback: false },
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
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
  const { config, clock, logger } = deps;
  const app = express();
  const channelCookie = {
    name: config.isProduction ? '__Host-mfa.channel' : 'mfa.channel',
    secure: config.isProduction,
  };

  app.set('trust proxy', config.trustProxy);
  app.set('view engine', 'ejs');
  app.set('views', VIEWS_DIR);
  app.disable('x-powered-by');
  app.locals.siteName = SITE_NAME;
  app.locals.isProduction = config.isProduction;

  // First of all, so that everything after it (request log, limits, audit) reads a checked req.ip.
  app.use(createClientAddress({ logger }));
  app.use(createRequestLog(logger));
  app.use(createSecurityHeaders(config.isProduction));
  app.use('/assets', express.static(PUBLIC_DIR, { index: false, maxAge: config.isProduction ? '1d' : 0 }));

  app.get(
    '/healthz',
    createHealthCheck({
      isDatabaseUp: () => deps.database.isHealthy(),
      providers: deps.providers,
      isProduction: config.isProduction,
      token: config.healthzToken,
    }),
  );

  // Coarse flood guards per address, under the finer rules (login throttle, code limits). Page
  // views count too: each new visitor's form makes a session row.
  app.use(createFloodGuard({ limit: deps.requestsPerMinute ?? 300, skip: () => false }));
  app.use(createFloodGuard({ limit: deps.postsPerMinute ?? 120, skip: (req) => req.method !== 'POST' }));
  app.use(express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }));

  // SignalWire fetches a call's document with neither session nor CSRF token: the one-time id is the credential.
  if (deps.voiceDocuments) app.use(createSignalWireVoiceRouter(deps.voiceDocuments));

  app.use(
    createSessionMiddleware({
      secret: config.sessionSecret,
      store: deps.sessionStore,
      isProduction: config.isProduction,
    }),
  );
  app.use(createSignedInLoader({ users: deps.users, clock }));

  const csrf = createCsrfProtection();
  app.use(csrf.exposeToken);
  app.use(csrf.protect);

  // The toll-fraud guard (issue 8): every send and every registration passes it.
  const fraud = createFraudGuard({
    limits: deps.limits,
    clock,
    config: config.fraud,
    audit: deps.audit,
    logger,
    store: deps.sending,
    accountsWithPhone: (phone) => deps.users.countByPhone(phone),
  });
  const mfa = createMfaService({
    providers: deps.providers,
    challenges: deps.challenges,
    limits: deps.limits,
    clock,
    rules: { ...DEFAULT_MFA_RULES, codeTtlMs: config.codeTtlMinutes * 60_000 },
    audit: deps.audit,
    sendGuard: fraud.sends,
    ceiling: deps.ceiling,
    logger,
  });
  const delivery = createCodeDelivery(mfa);
  const throttle = createLoginThrottle({ limits: deps.limits, clock });
  const knownDevices = createKnownDevices({
    secret: config.sessionSecret,
    clock,
    isProduction: config.isProduction,
  });
  const adminScopeTtlMs = config.adminScopeTtlMinutes * 60_000;

  app.use(
    createAuthRouter({
      users: deps.users,
      hasher: deps.hasher,
      throttle,
      knownDevices,
      delivery,
      registrations: fraud.registrations,
      audit: deps.audit,
      clock,
      isProduction: config.isProduction,
      logger,
      channelCookie,
    }),
  );
  app.use(
    createMfaRouter({
      users: deps.users,
      mfa,
      delivery,
      throttle,
      knownDevices,
      audit: deps.audit,
      clock,
      codeDigits: config.codeDigits,
      channelCookie,
    }),
  );
  app.use(createAccountRouter({ clock, adminScopeTtlMs }));
  app.use(
    createAdminRouter({
      users: deps.users,
      audit: deps.audit,
      mfa,
      delivery,
      providers: deps.providers,
      sending: fraud.stats,
      clock,
      adminScopeTtlMs,
    }),
  );
  // It lists real codes, so it exists only where no real person's codes are sent.
  if (!config.isProduction && deps.outbox) app.use(createOutboxRouter(deps.outbox));

  app.use(notFoundHandler);
  app.use(createErrorHandler(logger));
  return app;
}
