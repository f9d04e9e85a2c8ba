import type { Scope } from '../../src/mfa/provider.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import { seedAdminsFromConfig } from '../../src/admin/roles.js';
import { createApp } from '../../src/app.js';
import type { AuditLog } from '../../src/audit/log.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createOutbox, type Outbox } from '../../src/dev/outbox.js';
import { createMailer } from '../../src/email/index.js';
import type { Mailer } from '../../src/email/mailer.js';
import { createFactorSecrets } from '../../src/factors/secrets.js';
import type { SmtpTimeouts } from '../../src/email/smtp-mailer.js';
import type { AccountSessions } from '../../src/auth/account-sessions.js';
import type { RetiringSessionStore } from '../../src/http/session-store.js';
import { createLogger } from '../../src/logger.js';
import type { CodeEntryCeiling } from '../../src/mfa/code-entry-ceiling.js';
import { createProviders } from '../../src/mfa/providers/index.js';
import type { ProviderPool } from '../../src/mfa/providers/pool.js';
import { createStores, type Stores } from '../../src/stores/index.js';
import type { SqlDatabase } from '../../src/stores/sql/database.js';
import { createArgon2Hasher, type PasswordHasher } from '../../src/users/passwords.js';
import type { UserStore } from '../../src/users/store.js';
import { createTestClock, type TestClock } from './clock.js';

export const TEST_SESSION_SECRET = 'test-secret-that-is-at-least-32-characters-long';

/** Bandwidth named with fictional credentials (the fakes in test/fakes accept these). */
export const BANDWIDTH_TEST_ENV: Record<string, string> = {
  MFA_PROVIDER: 'bandwidth',
  BW_ACCOUNT_ID: '9900001',
  BW_USERNAME: 'user',
  BW_PASSWORD: 'password',
  BW_VOICE_APPLICATION_ID: 'voice-app',
  BW_MESSAGING_APPLICATION_ID: 'messaging-app',
  BW_NUMBER: '+12025550100',
};

/**
 * A valid production environment for tests that look at production behaviour (cookies, headers,
 * routes) without sending codes or emails: production refuses the console provider and mailer, so
 * Bandwidth and SMTP are named, pointing at loopback ports where nothing listens.
 */
export const PRODUCTION_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  ...BANDWIDTH_TEST_ENV,
  BW_MFA_BASE_URL: 'http://127.0.0.1:9/api/v1',
  SMS_COUNTRIES: 'US,CA',
  PUBLIC_URL: 'https://keyhole.example',
  // Production refuses the console mailer; nothing listens here either (these tests send no email).
  EMAIL_PROVIDER: 'smtp',
  SMTP_URL: 'smtp://127.0.0.1:9',
  EMAIL_FROM: 'Keyhole <no-reply@example.com>',
  // A fixed test key (not a secret anywhere): production requires one.
  FACTOR_ENCRYPTION_KEY: '5eed'.repeat(16),
};

/**
 * The toll-fraud limits most tests run with: far above what one test sends, so that tests of
 * other rules (many accounts from one address, many codes to one number) are not cut short by
 * the guard. Tests of the guard itself pass `fraudLimits: 'defaults'` and get the real ones.
 */
export const RELAXED_FRAUD_ENV: Record<string, string> = {
  SEND_LIMIT_PER_NUMBER_10MIN: '1000',
  SEND_LIMIT_PER_NUMBER_DAY: '1000',
  SEND_LIMIT_PER_ADDRESS_HOUR: '1000',
  SEND_LIMIT_PER_ADDRESS_DAY: '1000',
  SEND_LIMIT_COUNTRIES_PER_ADDRESS_DAY: '1000',
  SEND_BREAKER_MIN_PER_DAY: '1000',
  SEND_BUDGET_PER_DAY: '100000',
  REGISTER_LIMIT_PER_ADDRESS_HOUR: '1000',
  REGISTER_LIMIT_ACCOUNTS_PER_PHONE: '1000',
};

export interface TestApp {
  app: Express;
  config: Config;
  stores: Stores;
  database: SqlDatabase;
  clock: TestClock;
  users: UserStore;
  audit: AuditLog;
  /** The code-entry ceiling the site counts wrong codes in (the operator's `unlock` lifts it). */
  ceiling: CodeEntryCeiling;
  outbox: Outbox;
  providers: ProviderPool;
  /** The app's mailer: the console's unless `env` names EMAIL_PROVIDER=smtp and a server. */
  mailer: Mailer;
  /** Lines the console provider printed, oldest first. */
  printed: string[];
  /** Emails the console mailer printed (one string each, heading and body), oldest first. */
  printedEmails: string[];
  databasePath: string;
  /** Makes an existing account an admin, as the operator's `npm run admin -- grant` does. */
  grantAdmin(username: string): Promise<void>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Environment variables on top of the test defaults (console provider, throwaway database). */
  env?: Record<string, string>;
  clock?: TestClock;
  /** Reuse a database file (restart tests); otherwise a fresh one in a temp folder. */
  databasePath?: string;
  /** Run on this database (PostgreSQL, say) instead of a SQLite file; the caller closes it. */
  database?: SqlDatabase;
  /** With DATABASE_URL in `env`: the PostgreSQL schema this app's tables live in (one per test). */
  postgresSchema?: string;
  /** How long a provider call may take in tests before it counts as unavailable. */
  providerTimeoutMs?: number;
  /** Replace the providers built from config (for tests that script a provider). */
  providers?: ProviderPool;
  /** Shorter SMTP deadlines, for tests of a mail host that is down or stuck. */
  smtpTimeouts?: Partial<SmtpTimeouts>;
  /** The flood guards (RATE_LIMIT_REQUESTS_PER_MINUTE, RATE_LIMIT_POSTS_PER_MINUTE): far above any test's by default. */
  requestsPerMinute?: number;
  postsPerMinute?: number;
  /** A hasher to use instead of the real argon2id one (e.g. one that counts calls). */
  hasher?: PasswordHasher;
  /** Receives the app's log lines (JSON), for tests of what is logged. */
  logLines?: string[];
  logLevel?: string;
  /** Sessions somewhere else than the app's SQL database (a Redis session store, say). */
  sessionStore?: RetiringSessionStore & AccountSessions;
  /** 'relaxed' (the default) lifts the toll-fraud limits out of the way; 'defaults' keeps the real ones. */
  fraudLimits?: 'relaxed' | 'defaults';
}

/** Outside production the tests' apps seal factor secrets with this key (not a secret anywhere). */
export const TEST_FACTOR_KEY = Buffer.from('7e57'.repeat(16), 'hex');

let sharedHasher: Promise<PasswordHasher> | undefined;

/** A whole app on a real SQLite file with the real migrations, for one test. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const folder =
    options.databasePath || options.database ? undefined : mkdtempSync(join(tmpdir(), 'mfa-site-test-'));
  const databasePath = options.databasePath ?? (folder ? join(folder, 'app.db') : ':memory:');
  const config = loadConfig({
    NODE_ENV: 'test',
    SESSION_SECRET: TEST_SESSION_SECRET,
    DATABASE_PATH: databasePath,
    LOG_LEVEL: 'silent',
    RATE_LIMIT_REQUESTS_PER_MINUTE: String(options.requestsPerMinute ?? 10_000),
    RATE_LIMIT_POSTS_PER_MINUTE: String(options.postsPerMinute ?? 1000),
    ...(options.fraudLimits === 'defaults' ? {} : RELAXED_FRAUD_ENV),
    ...options.env,
  });
  const clock = options.clock ?? createTestClock();
  const logger = options.logLines
    ? createLogger(options.logLevel ?? 'info', {
        write: (line: string) => void options.logLines!.push(line),
      })
    : createLogger('silent');
  // The same factory as server.ts: DATABASE_URL and REDIS_URL in `env` move state as they do there.
  const stores = await createStores({
    config,
    clock,
    logger,
    codeHashKey: 'test-code-hash-key',
    database: options.database,
    postgresSchema: options.postgresSchema,
  });
  const { database, users, audit, ceiling } = stores;
  const printed: string[] = [];
  const outbox = createOutbox(clock);
  const providers =
    options.providers ??
    createProviders({
      config,
      codes: stores.codes,
      print: (line) => printed.push(line),
      outbox,
      timeoutMs: options.providerTimeoutMs ?? 1500,
      clock,
      voiceDocuments: stores.voiceDocuments,
      twilioVerifications: stores.twilioVerifications,
      providerHealth: stores.providerHealth,
    });
  const printedEmails: string[] = [];
  // The same factory as server.ts: EMAIL_PROVIDER=smtp and an SMTP server in `env` send through it.
  const mailer = createMailer({
    settings: config.email,
    print: (text) => printedEmails.push(text),
    outbox,
    timeouts: options.smtpTimeouts,
  });
  sharedHasher ??= createArgon2Hasher();
  // As server.ts does at start: ADMIN_USERNAMES makes existing accounts admins, and only those.
  await seedAdminsFromConfig({
    users,
    audit,
    adminUsernames: config.adminUsernames,
    ledger: stores.adminSeedLedger,
    clock,
    logger,
  });

  const app = createApp({
    config,
    stores: options.sessionStore
      ? { ...stores, sessions: options.sessionStore, accountSessions: options.sessionStore }
      : stores,
    clock,
    logger,
    hasher: options.hasher ?? (await sharedHasher),
    providers,
    mailer,
    outbox,
    factorSecrets: createFactorSecrets(config.factors.encryptionKey ?? TEST_FACTOR_KEY),
  });

  return {
    app,
    config,
    stores,
    database,
    clock,
    users,
    audit,
    ceiling,
    outbox,
    providers,
    mailer,
    printed,
    printedEmails,
    databasePath,
    async grantAdmin(username) {
      if (!(await users.setAdmin(username, true))) {
        throw new Error(`no account named ${username} to make an admin`);
      }
    },
    async close() {
      await stores.close();
      if (folder) rmSync(folder, { recursive: true, force: true });
    },
  };
}

/**
 * The newest code the console provider printed for a scope: from an SMS line ("Keyhole code:
 * 123456 | @localhost #123456", "Keyhole admin code: ...") or a call ("Your Keyhole code is 1 2 3").
 */
const CODE_LABELS: Record<Scope, string> = {
  login: 'Keyhole code',
  admin: 'Keyhole admin code',
  enrol: 'Keyhole sign-up code',
  settings: 'Keyhole settings code',
  reset: 'Keyhole reset code',
  // The same words as a login's: an API code never says what its caller asked it for.
  api: 'Keyhole code',
};

/** How many codes of a scope the console provider printed. */
export function consoleCodesPrinted(printed: string[], scope: Scope = 'login'): number {
  const label = CODE_LABELS[scope];
  return printed.filter((line) => line.includes(`: ${label}: `) || line.includes(`: Your ${label} is `))
    .length;
}

export function lastConsoleCode(printed: string[], scope: Scope = 'login'): string {
  const label = CODE_LABELS[scope];
  const pattern = new RegExp(`: ${label}: (\\d+) \\| @\\S+ #\\1$|: Your ${label} is ([\\d ]+)$`);
  for (let i = printed.length - 1; i >= 0; i -= 1) {
    const match = printed[i]!.match(pattern);
    if (match) return (match[1] ?? match[2]!).replace(/ /g, '');
  }
  throw new Error(`no ${scope} code was printed`);
}
