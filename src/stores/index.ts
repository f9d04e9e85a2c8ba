import type { OneTimeTokenStore } from '../account/one-time-tokens.js';
import type { RecoveryCodeStore } from '../factors/recovery-code-store.js';
import type { FactorStore } from '../factors/store.js';
import type { ApiKeyStore } from '../api/keys.js';
import { createOldIdempotencyKeysTask, type IdempotencyStore } from '../api/idempotency.js';
import { createExpiredApiVerificationsTask, type ApiVerificationStore } from '../api/verification-store.js';
import type { SecondFactorReset } from '../factors/second-factor-reset.js';
import type { RememberedBrowserStore } from '../auth/remembered-browser-store.js';
import type { AdminSeedLedger } from '../admin/seed-ledger.js';
import type { AccountSessions } from '../auth/account-sessions.js';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { SendingStore } from '../fraud/store.js';
import { createMemoryRateLimitStore, type RateLimitStore } from '../http/rate-limit.js';
import type { RetiringSessionStore } from '../http/session-store.js';
import type { Logger } from '../logger.js';
import type { ChallengeStore } from '../mfa/challenge-store.js';
import type { CodeEntryCeiling } from '../mfa/code-entry-ceiling.js';
import type { CodeStore } from '../mfa/code-store.js';
import {
  createMemoryProviderHealthStore,
  type ProviderHealthStore,
} from '../mfa/providers/provider-health.js';
import {
  createMemoryVoiceDocumentStore,
  type VoiceDocumentStore,
} from '../mfa/providers/signalwire-voice-route.js';
import {
  createMemoryTwilioVerificationLedger,
  type TwilioVerificationLedger,
} from '../mfa/providers/twilio-verification-ledger.js';
import type { UserStore } from '../users/store.js';
import { createRedisChallengeStore } from './redis/challenge-store.js';
import type { SiteRedis } from './redis/client.js';
import { callRedis, type RedisStoreOptions } from './redis/commands.js';
import { createRedisProviderHealthStore } from './redis/provider-health-store.js';
import { createRedisRateLimitStore } from './redis/rate-limit-store.js';
import { createRedisSessionStore } from './redis/session-store.js';
import { createRedisTwilioVerificationLedger } from './redis/twilio-verification-ledger.js';
import { createRedisVoiceDocumentStore } from './redis/voice-document-store.js';
import { createSqlAuditLog } from './sql/audit-log.js';
import { createSqlChallengeStore } from './sql/challenge-store.js';
import { createSqlCodeEntryCeiling } from './sql/code-entry-ceiling.js';
import { createSqlCodeStore } from './sql/code-store.js';
import { openSqlDatabase, type SqlDatabase } from './sql/database.js';
import { createExpiredSessionTasks, createWalCheckpointTask } from './sql/housekeeping.js';
import { createSqlOneTimeTokenStore } from './sql/one-time-token-store.js';
import { createSqlFactorStore } from './sql/factor-store.js';
import { createSqlApiKeyStore } from './sql/api-key-store.js';
import { createSqlApiVerificationStore } from './sql/api-verification-store.js';
import { createSqlIdempotencyStore } from './sql/idempotency-store.js';
import { createSqlRememberedBrowserStore } from './sql/remembered-browser-store.js';
import { createSqlSecondFactorReset } from './sql/second-factor-reset.js';
import { createSqlRecoveryCodeStore } from './sql/recovery-code-store.js';
import { createSqlAdminSeedLedger } from './sql/seed-ledger.js';
import { createSqlSendingStore } from './sql/sending-store.js';
import { SqlSessionStore } from './sql/session-store.js';
import { createSqlUserStore } from './sql/user-store.js';

/**
 * The one place that decides where each kind of state lives (server.ts, the admin command and the
 * tests all come here):
 * - the database (SQLite by DATABASE_PATH, or PostgreSQL by DATABASE_URL) keeps what must last:
 *   accounts, the audit log, codes the site makes itself, the fraud guard's facts, the code-entry
 *   ceiling, second factors and recovery codes, remembered browsers, one-time links, the
 *   verification API's keys, codes and Idempotency-Keys; and, without Redis, sessions and
 *   challenges too;
 * - Redis (REDIS_URL), when set, keeps what several instances must share and see at once:
 *   sessions, challenges, rate-limit counters, SignalWire's voice documents, Twilio's verification
 *   map and the providers' circuit breaker;
 * - without Redis, the counters, voice documents, Twilio's map and the breaker live in this
 *   process, which is right for one instance and only for one.
 */
export interface Stores {
  database: SqlDatabase;
  users: UserStore;
  audit: AuditLog;
  codes: CodeStore;
  challenges: ChallengeStore;
  limits: RateLimitStore;
  sessions: RetiringSessionStore & AccountSessions;
  /**
   * The signed-in sessions of one account, listed and ended (src/auth/account-sessions.ts): the
   * session store itself, which indexes each session by its account.
   */
  accountSessions: AccountSessions;
  sending: SendingStore;
  ceiling: CodeEntryCeiling;
  adminSeedLedger: AdminSeedLedger;
  /** One-time links (email verification, password reset, deletion): always in the database. */
  tokens: OneTimeTokenStore;
  /** Authenticator apps and passkeys (src/factors/store.ts): always in the database. */
  factors: FactorStore;
  /** "Remember this browser" tokens, as digests (src/auth/remembered-browser-store.ts): always in the database. */
  rememberedBrowsers: RememberedBrowserStore;
  /** An admin's reset of an account's second factors, across their tables in one transaction. */
  secondFactorReset: SecondFactorReset;
  /** Recovery codes, as digests only (src/factors/recovery-code-store.ts): always in the database. */
  recoveryCodes: RecoveryCodeStore;
  /** Keys of the verification API, as digests only (src/api/keys.ts): always in the database. */
  apiKeys: ApiKeyStore;
  /** The verification API's codes (src/api/verification-store.ts): always in the database. */
  apiVerifications: ApiVerificationStore;
  /** The verification API's Idempotency-Keys and their answers (src/api/idempotency.ts): always in the database. */
  idempotency: IdempotencyStore;
  voiceDocuments: VoiceDocumentStore;
  twilioVerifications: TwilioVerificationLedger;
  providerHealth: ProviderHealthStore;
  /**
   * What keeps the stores' own tables small, for the housekeeping timer in server.ts: expired
   * sessions and tombstones (sessions on SQL only: Redis expires its keys itself), expired one-time
   * links, remembered browsers, API verifications and Idempotency-Keys, then SQLite's write-ahead
   * log. server.ts adds the audit retention, expired challenges and never-proven accounts.
   */
  housekeeping: HousekeepingTask[];
  /** Whether each backing service answers now, for /healthz; never throws. */
  health: StoreHealth;
  /** Where the state lives, for the start-up log line: never a password. */
  description: { database: string; redis?: string };
  close(): Promise<void>;
}

export interface StoreHealth {
  database(): Promise<boolean>;
  /** Present only when Redis is configured. */
  redis?: () => Promise<boolean>;
}

export interface StoreOptions {
  config: Pick<Config, 'databasePath' | 'databaseUrl' | 'redisUrl' | 'redisKeyPrefix'>;
  clock: Clock;
  logger: Logger;
  /** Codes the site makes itself are hashed with this key (derived from the session secret). */
  codeHashKey: string;
  /** Tests: tables in this PostgreSQL schema, so each test has its own. */
  postgresSchema?: string;
  /** Tests: an already open database to build on (closed by its owner, not by close()). */
  database?: SqlDatabase;
  /** How long start-up waits for Redis before it goes on and serves 503 pages until Redis answers. */
  redisStartupWaitMs?: number;
  /** After such a start, how often Redis is asked until it answers, to be checked (tests: sooner). */
  lateRedisCheckIntervalMs?: number;
}

const REDIS_STARTUP_WAIT_MS = 5_000;
/** Expired links per delete: small rows, few of them; the same bound as sessions keeps each short. */
const TOKEN_DELETE_BATCH_SIZE = 250;

/**
 * A URL fit for a log line: the password masked, wherever it is given (`user:password@`, or a
 * `password=`/`sslpassword=` parameter, which node-postgres also reads); other parameters dropped.
 */
export function describeStoreUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const passwordInQuery = ['password', 'sslpassword', 'sslkey'].some((name) =>
      parsed.searchParams.has(name),
    );
    if (parsed.password || passwordInQuery) parsed.password = '***';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString();
  } catch {
    return 'an unreadable URL';
  }
}

/** Which database the configuration names, for messages ("no account named x in ..."). */
export function describeDatabase(config: Pick<Config, 'databasePath' | 'databaseUrl'>): string {
  return config.databaseUrl ? describeStoreUrl(config.databaseUrl) : config.databasePath;
}

/** Opens the configured database (PostgreSQL when DATABASE_URL is set, else the SQLite file) and migrates it. */
export function openConfiguredDatabase(
  config: Pick<Config, 'databasePath' | 'databaseUrl'>,
  /** A pooled PostgreSQL connection that broke (the query on it, if any, has already become a 503). */
  onConnectionError: (error: Error) => void,
  postgresSchema?: string,
): Promise<SqlDatabase> {
  if (!config.databaseUrl) return openSqlDatabase({ sqlitePath: config.databasePath });
  return openSqlDatabase({
    postgresUrl: config.databaseUrl,
    schema: postgresSchema,
    onError: onConnectionError,
  });
}

/** Waits for the first connection, but no longer than `ms`: a Redis that is down does not stop the site. */
async function connectWithin(client: SiteRedis, ms: number): Promise<boolean> {
  const connected = client.connect().then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([connected, waited]);
  } finally {
    clearTimeout(timer);
  }
}

/** The oldest Redis the stores run on: the rate limits name a window by its exact expiry (PEXPIRETIME). */
export const MINIMUM_REDIS_MAJOR_VERSION = 7;

/**
 * Why the Redis that answered `INFO` cannot hold the site's state, or undefined when it can (or
 * does not say its version). On an older Redis every rate-limit command fails, and the flood guards
 * count every request: every page would be the 503 page. Refusing to start says why at once.
 */
export function redisVersionProblem(info: string): string | undefined {
  const version = /^redis_version:(\d+)\.(\S*)/m.exec(info);
  if (!version || Number(version[1]) >= MINIMUM_REDIS_MAJOR_VERSION) return undefined;
  return `REDIS_URL points at Redis ${version[1]}.${version[2]}; Keyhole needs Redis ${MINIMUM_REDIS_MAJOR_VERSION} or later (its rate limits use PEXPIRETIME)`;
}

/**
 * What Redis says of itself (INFO: its server and memory sections among others); 'refused' when it
 * answered with an error (some managed services rename INFO or deny it by ACL); 'unanswered' when
 * no answer came (a timeout, a connection lost), which a later try may get.
 */
async function readRedisInfo(
  redis: SiteRedis,
  isErrorReply: (error: unknown) => boolean,
): Promise<string | 'refused' | 'unanswered'> {
  try {
    return String(await redis.sendCommand(['INFO']));
  } catch (error) {
    return isErrorReply(error) ? 'refused' : 'unanswered';
  }
}

/**
 * What an operator must hear about the Redis the site runs on, beyond its version:
 * - Redis holds security state (attempt counts, lockouts, session tombstones): a Redis that evicts
 *   keys when full would quietly lift a lockout or bring back a logged-out session. Managed Redis
 *   services often default to evicting. Said loudly; `noeviction` makes a full Redis a 503, never
 *   a weaker rule.
 * - A Redis that will not say its version or policy could not be checked: said once.
 */
function reportRedisInfo(info: string | 'refused', logger: Logger): void {
  if (info === 'refused' || !/^redis_version:/m.test(info)) {
    logger.warn(
      `Redis did not say its version or eviction policy (INFO refused or renamed), so neither was checked: Keyhole needs Redis ${MINIMUM_REDIS_MAJOR_VERSION} or later with maxmemory-policy noeviction`,
    );
    return;
  }
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy && policy !== 'noeviction') {
    logger.error(
      { maxmemoryPolicy: policy },
      'Redis may evict keys when full (maxmemory-policy is not noeviction): evicted keys would lift lockouts and limits and bring back ended sessions; set maxmemory-policy noeviction',
    );
  }
}

/** How often a site that started without Redis asks it for its INFO, until it answers. */
const LATE_REDIS_CHECK_INTERVAL_MS = 5_000;

/**
 * Checks the Redis the site runs on: reports what an operator must hear (reportRedisInfo) and
 * returns why it cannot be used, if it cannot (too old); 'unanswered' when INFO got no answer yet.
 */
async function checkRedis(
  redis: SiteRedis,
  isErrorReply: (error: unknown) => boolean,
  logger: Logger,
): Promise<{ problem?: string } | 'unanswered'> {
  const info = await readRedisInfo(redis, isErrorReply);
  if (info === 'unanswered') return info;
  const problem = info === 'refused' ? undefined : redisVersionProblem(info);
  if (problem) return { problem };
  reportRedisInfo(info, logger);
  return {};
}

/**
 * For a site that started before Redis answered (or answered INFO): checks it once it does. Too
 * late to refuse to start, so a Redis too old is named in the log as an error (every page is the
 * 503 page until REDIS_URL points at a newer one). Returns the function that stops the checking
 * (close()). Exported for its spec (test/stores/redis-version.test.ts).
 */
export function checkRedisOnceItAnswers(
  redis: SiteRedis,
  isErrorReply: (error: unknown) => boolean,
  logger: Logger,
  intervalMs: number,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const attempt = async () => {
    const checked = await checkRedis(redis, isErrorReply, logger);
    if (stopped) return;
    if (checked === 'unanswered') {
      timer = setTimeout(() => void attempt(), intervalMs).unref();
      return;
    }
    if (checked.problem)
      logger.error(`${checked.problem}: every page that needs Redis answers 503 until it does`);
  };
  timer = setTimeout(() => void attempt(), intervalMs).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export async function createStores(options: StoreOptions): Promise<Stores> {
  const { config, clock, logger } = options;
  const database =
    options.database ??
    (await openConfiguredDatabase(
      config,
      (error) => logger.error({ err: error }, 'a PostgreSQL connection failed'),
      options.postgresSchema,
    ));
  const ownsDatabase = options.database === undefined;

  const durable = {
    database,
    users: createSqlUserStore(database, clock),
    audit: createSqlAuditLog(database, clock),
    codes: createSqlCodeStore(database, clock, options.codeHashKey),
    sending: createSqlSendingStore(database, clock),
    ceiling: createSqlCodeEntryCeiling(database, clock),
    adminSeedLedger: createSqlAdminSeedLedger(database),
    tokens: createSqlOneTimeTokenStore(database, clock),
    factors: createSqlFactorStore(database, clock),
    rememberedBrowsers: createSqlRememberedBrowserStore(database, clock),
    secondFactorReset: createSqlSecondFactorReset(database),
    recoveryCodes: createSqlRecoveryCodeStore(database, clock),
    apiKeys: createSqlApiKeyStore(database, clock),
    apiVerifications: createSqlApiVerificationStore(database, clock),
    idempotency: createSqlIdempotencyStore(database, clock),
  };
  const expiredTokens: HousekeepingTask = {
    name: 'expired one-time links',
    batchSize: TOKEN_DELETE_BATCH_SIZE,
    runBatch: () => durable.tokens.deleteExpired(clock.now(), TOKEN_DELETE_BATCH_SIZE),
  };
  const expiredRememberedBrowsers: HousekeepingTask = {
    name: 'expired remembered browsers',
    batchSize: TOKEN_DELETE_BATCH_SIZE,
    runBatch: () => durable.rememberedBrowsers.deleteExpired(clock.now(), TOKEN_DELETE_BATCH_SIZE),
  };
  // The verification API's rows: expired verifications a day after their expiry, answers to an
  // Idempotency-Key after a day.
  const apiHousekeeping = [
    createExpiredApiVerificationsTask({ verifications: durable.apiVerifications, clock }),
    createOldIdempotencyKeysTask({ store: durable.idempotency, clock }),
  ];
  const databaseDescription = describeDatabase(config);
  // Last in a pass, after the deletes, so what they wrote is checkpointed too.
  const walCheckpoint = database.dialect === 'sqlite' ? [createWalCheckpointTask(database)] : [];

  if (!config.redisUrl) {
    const sessions = new SqlSessionStore(database, clock);
    return {
      ...durable,
      challenges: createSqlChallengeStore(database, clock),
      sessions,
      accountSessions: sessions,
      housekeeping: [
        ...createExpiredSessionTasks({ sessions, clock }),
        expiredTokens,
        expiredRememberedBrowsers,
        ...apiHousekeeping,
        ...walCheckpoint,
      ],
      limits: createMemoryRateLimitStore(clock),
      voiceDocuments: createMemoryVoiceDocumentStore(clock),
      twilioVerifications: createMemoryTwilioVerificationLedger(clock),
      providerHealth: createMemoryProviderHealthStore(clock),
      health: { database: () => database.isHealthy() },
      description: { database: databaseDescription },
      async close() {
        if (ownsDatabase) await database.close();
      },
    };
  }

  const redisDescription = describeStoreUrl(config.redisUrl);
  let lastRedisErrorLoggedAt = 0;
  // Loaded only here: without REDIS_URL the Redis client library is never loaded (a quicker start).
  const { createSiteRedis, isErrorReply } = await import('./redis/client.js');
  const redis = createSiteRedis(config.redisUrl, {
    onReplaced: () =>
      logger.error(
        { redis: redisDescription },
        'Redis stopped answering on its connection: a new connection replaces it',
      ),
    // While Redis is away every reconnect attempt fails: one line every 10 s is enough to see it.
    onError: (error) => {
      const now = Date.now();
      if (now - lastRedisErrorLoggedAt < 10_000) return;
      lastRedisErrorLoggedAt = now;
      logger.error({ err: error, redis: redisDescription }, 'Redis is not answering');
    },
  });
  let stopLateCheck = () => {};
  const checkLater = () =>
    checkRedisOnceItAnswers(
      redis,
      isErrorReply,
      logger,
      options.lateRedisCheckIntervalMs ?? LATE_REDIS_CHECK_INTERVAL_MS,
    );
  const checked = (await connectWithin(redis, options.redisStartupWaitMs ?? REDIS_STARTUP_WAIT_MS))
    ? await checkRedis(redis, isErrorReply, logger)
    : 'unanswered';
  if (checked === 'unanswered') {
    logger.warn(
      { redis: redisDescription },
      'Redis does not answer yet: pages that need it show the 503 page until it does',
    );
    stopLateCheck = checkLater();
  } else if (checked.problem) {
    redis.destroy();
    if (ownsDatabase) await database.close();
    throw new Error(checked.problem);
  }
  const shared: RedisStoreOptions = { keyPrefix: config.redisKeyPrefix, clock };
  const sessions = createRedisSessionStore(redis, shared);
  return {
    ...durable,
    challenges: createRedisChallengeStore(redis, shared),
    sessions,
    accountSessions: sessions,
    limits: createRedisRateLimitStore(redis, shared),
    voiceDocuments: createRedisVoiceDocumentStore(redis, shared),
    twilioVerifications: createRedisTwilioVerificationLedger(redis, shared),
    providerHealth: createRedisProviderHealthStore(redis, shared),
    housekeeping: [expiredTokens, expiredRememberedBrowsers, ...apiHousekeeping, ...walCheckpoint],
    health: {
      database: () => database.isHealthy(),
      redis: () =>
        callRedis('health', () => redis.sendCommand(['PING'])).then(
          (reply) => String(reply) === 'PONG',
          () => false,
        ),
    },
    description: { database: databaseDescription, redis: redisDescription },
    async close() {
      stopLateCheck();
      // destroy(), not quit(): quit waits for Redis to answer, which it may never do.
      redis.destroy();
      if (ownsDatabase) await database.close();
    },
  };
}
