import dotenv from 'dotenv';
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import { seedAdminsFromConfig } from './admin/roles.js';
import { createApp } from './app.js';
import { createAuditRetentionTask } from './audit/retention.js';
import { systemClock } from './clock.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createOutbox } from './dev/outbox.js';
import { createMailer } from './email/index.js';
import { startHousekeeping } from './housekeeping.js';
import { SERVER_LIMITS, createHttpServer } from './http/server-limits.js';
import { createTerminalLogger, type Logger } from './logger.js';
import { createFactorSecrets, developmentKeyPath, loadOrCreateDevelopmentKey } from './factors/secrets.js';
import { createExpiredChallengesTask } from './mfa/challenge-store.js';
import { createUnprovenAccountsTask } from './auth/enrolment.js';
import { createProviders } from './mfa/providers/index.js';
import { createStores } from './stores/index.js';
import { createHashingProcess, hasherOnceStarted } from './users/hashing-process.js';

/** Process entry: the only file that reads process.env, opens files and listens on a port. */

const HOUSEKEEPING_INTERVAL_MS = 10 * 60_000;

function readConfigOrExit(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      console.error('Fix these in your environment or .env file (see .env.example), then start again.');
      process.exit(1);
    }
    throw error;
  }
}

/**
 * FACTOR_ENCRYPTION_KEY, or outside production (where config requires it) a key kept beside the
 * database: made once, so apps enrolled on a laptop survive a restart.
 */
function readFactorKey(config: Config, logger: Logger): Buffer {
  if (config.factors.encryptionKey) return config.factors.encryptionKey;
  const path = developmentKeyPath(config.databasePath);
  const { key, created } = loadOrCreateDevelopmentKey(path);
  logger.warn(
    { path },
    created
      ? 'FACTOR_ENCRYPTION_KEY is not set: made a development key beside the database; set your own before you deploy'
      : 'FACTOR_ENCRYPTION_KEY is not set: using the development key beside the database; set your own before you deploy',
  );
  return key;
}

async function main() {
  dotenv.config({ quiet: true });
  const config = readConfigOrExit();
  const logger = createTerminalLogger(config.logLevel, {
    pretty: !config.isProduction && process.stdout.isTTY === true,
  });
  if (config.sessionSecretGenerated) {
    logger.warn('SESSION_SECRET is not set: using a random one, so sessions end when the server restarts');
  }
  for (const warning of config.warnings) logger.warn(warning);
  // argon2 in a child process at the lowest CPU priority, so a burst of logins cannot slow pages.
  // Not waited for: its start (a Node process, then the decoy hash) goes on while the site starts
  // and listens; a password that arrives sooner waits for it. A child that cannot start stops the site.
  const hasherStarting = createHashingProcess({ logger });
  hasherStarting.catch((error: unknown) => {
    logger.fatal({ err: error }, 'password hashing could not start');
    process.exit(1);
  });
  const hasher = hasherOnceStarted(hasherStarting);

  const clock = systemClock;
  // Codes the app makes itself are hashed with a key derived from the session secret.
  const codeHashKey = createHash('sha256').update(`one-time-codes:${config.sessionSecret}`).digest('hex');
  const stores = await createStores({ config, clock, logger, codeHashKey });
  if (config.databaseUrl && !config.redisUrl) {
    logger.warn(
      'DATABASE_URL without REDIS_URL: rate limits and provider state stay in this process, so run one instance only',
    );
  }
  const { users, audit, challenges } = stores;
  await seedAdminsFromConfig({
    users,
    audit,
    adminUsernames: config.adminUsernames,
    ledger: stores.adminSeedLedger,
    clock,
    logger,
  });
  const outbox = config.isProduction ? undefined : createOutbox(clock);
  // The console provider and mailer print to the terminal (production refuses both).
  const print = (text: string) => process.stdout.write(`${text}\n`);
  const providers = createProviders({
    config,
    codes: stores.codes,
    print,
    outbox,
    clock,
    voiceDocuments: stores.voiceDocuments,
    twilioVerifications: stores.twilioVerifications,
    providerHealth: stores.providerHealth,
  });
  const mailer = createMailer({ settings: config.email, print, outbox });
  const factorSecrets = createFactorSecrets(readFactorKey(config, logger));

  const app = createApp({
    config,
    stores,
    clock,
    logger,
    hasher,
    providers,
    mailer,
    outbox,
    factorSecrets,
  });

  const housekeeping = startHousekeeping({
    tasks: [
      createAuditRetentionTask({ audit, clock, retentionDays: config.auditRetentionDays }),
      createExpiredChallengesTask({ challenges, clock }),
      createUnprovenAccountsTask({ users, clock }),
      // The stores' own: expired sessions and tombstones, one-time links, remembered browsers, the
      // API's verifications and Idempotency-Keys, then SQLite's WAL checkpoint (Stores.housekeeping).
      ...stores.housekeeping,
    ],
    intervalMs: HOUSEKEEPING_INTERVAL_MS,
    logger,
  });
  void housekeeping.runOnce();

  // Timeouts and a connection cap against slow or greedy clients (see http/server-limits.ts).
  const server: Server = createHttpServer(app, SERVER_LIMITS, {
    // The same proxies TRUST_PROXY names: their connections carry many clients.
    isTrustedProxy: (address) =>
      (app.get('trust proxy fn') as (address: string, hop: number) => boolean)(address, 0),
  });
  server.listen(config.port, config.host, () => {
    const shownHost = config.host === '127.0.0.1' || config.host === '0.0.0.0' ? 'localhost' : config.host;
    logger.info({ providers: providers.names(), email: mailer.name, ...stores.description }, 'site started');
    console.log(
      `\n  Site running at http://${shownHost}:${config.port}  (code provider: ${providers.names().join(', ')}; email: ${mailer.name})`,
    );
    if (outbox)
      console.log(
        `  Codes and emails sent by the console are shown at http://${shownHost}:${config.port}/dev/outbox\n`,
      );
  });
  server.on('error', (error) => {
    logger.fatal({ err: error }, 'could not listen');
    process.exit(1);
  });

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    housekeeping.stop();
    server.close(() => {
      void Promise.allSettled([stores.close(), hasher.close()]).finally(() => process.exit(0));
    });
    // Keep-alive connections would hold close() open; give them a moment, then go.
    setTimeout(() => process.exit(0), 5000).unref();
    server.closeIdleConnections();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error) => {
  console.error('The site could not start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
