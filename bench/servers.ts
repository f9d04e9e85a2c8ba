import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createClient } from 'redis';
import {
  freePort,
  pinnedCommand,
  startServer,
  waitForOk,
  type Pinning,
  type ServerProcess,
} from './processes.js';

/**
 * The servers of a run: the site as it runs in production (built output, NODE_ENV=production,
 * SQLite, a real provider pointed at a loopback fake) and the bare baseline app; plus the two
 * measurements that need no load generator: `npm start` to the first 200, and the state the
 * database keeps.
 */

/** The number codes come from; the accounts use the other fictional numbers. */
const SITE_NUMBER = '+12025550100';
/** Limits at their largest allowed values, so setup and the login storm are not refused. */
const RAISED_TOLL_FRAUD_LIMITS = {
  SEND_BUDGET_PER_DAY: '100000000',
  SEND_LIMIT_PER_NUMBER_10MIN: '1000000',
  SEND_LIMIT_PER_NUMBER_DAY: '1000000',
  SEND_LIMIT_PER_ADDRESS_HOUR: '1000000',
  SEND_LIMIT_PER_ADDRESS_DAY: '1000000',
  SEND_BREAKER_MIN_PER_DAY: '1000000',
  REGISTER_LIMIT_PER_ADDRESS_HOUR: '1000000',
  REGISTER_LIMIT_ACCOUNTS_PER_PHONE: '1000000',
};

/** Only what a process needs to run: nothing from this shell's own site settings. */
function baseEnvironment(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'SystemRoot'];
  return Object.fromEntries(keep.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

export interface SiteSettings {
  port: number;
  databasePath: string;
  providerUrl: string;
  redisUrl?: string;
  redisKeyPrefix?: string;
}

export function siteEnvironment(settings: SiteSettings): NodeJS.ProcessEnv {
  return {
    ...baseEnvironment(),
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(settings.port),
    SESSION_SECRET: randomBytes(32).toString('hex'),
    PUBLIC_URL: 'https://keyhole.example',
    DATABASE_PATH: settings.databasePath,
    // Set, though empty, so that a .env file cannot add them (dotenv never overrides a set variable).
    DATABASE_URL: '',
    REDIS_URL: settings.redisUrl ?? '',
    REDIS_KEY_PREFIX: settings.redisKeyPrefix ?? '',
    MFA_PROVIDER: 'signalwire',
    SIGNALWIRE_PROJECT: 'bench-project',
    SIGNALWIRE_TOKEN: 'bench-token',
    SIGNALWIRE_NUMBER: SITE_NUMBER,
    SIGNALWIRE_BASE_URL: settings.providerUrl,
    BASE_CALLBACK_URL: 'https://keyhole.example',
    SMS_COUNTRIES: 'US',
    // Production refuses the console mailer. The journeys measured send no email, so nothing listens here.
    EMAIL_PROVIDER: 'smtp',
    SMTP_URL: 'smtp://127.0.0.1:9',
    EMAIL_FROM: 'Keyhole <no-reply@example.com>',
    // Production requires it; a fixed bench key seals nothing anyone keeps.
    FACTOR_ENCRYPTION_KEY: 'be0c'.repeat(16),
    // The flood guards would answer a load test's one address with 429s.
    RATE_LIMIT_REQUESTS_PER_MINUTE: '0',
    RATE_LIMIT_POSTS_PER_MINUTE: '0',
    ...RAISED_TOLL_FRAUD_LIMITS,
  };
}

export async function startSite(
  repo: string,
  workDir: string,
  pinning: Pinning,
  settings: Omit<SiteSettings, 'port'>,
  name = 'site',
): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name,
    command: process.execPath,
    args: [join(repo, 'dist', 'src', 'server.js')],
    env: siteEnvironment({ ...settings, port }),
    // Not the repository: a developer's .env there must not change what is measured.
    cwd: workDir,
    port,
    pinning,
    readyPath: '/healthz',
  });
}

export async function startBaseline(repo: string, pinning: Pinning): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: 'baseline',
    command: process.execPath,
    args: ['--import', 'tsx', join(repo, 'bench', 'baseline', 'server.ts')],
    env: { ...baseEnvironment(), NODE_ENV: 'production', PORT: String(port) },
    cwd: repo,
    port,
    pinning,
    readyPath: '/login',
  });
}

/**
 * Seconds from spawning `npm start` (pinned like the servers) to its first 200 on /healthz, with
 * the site's production settings and an existing database.
 */
export async function measureNpmStart(
  repo: string,
  pinning: Pinning,
  settings: Omit<SiteSettings, 'port'>,
): Promise<number> {
  const port = await freePort();
  const [command, args] = pinnedCommand(pinning, 'npm', ['start']);
  const startedAt = performance.now();
  // Its own process group: npm starts a shell, which starts node; all of them are stopped together.
  const child = spawn(command, args, {
    cwd: repo,
    env: siteEnvironment({ ...settings, port }),
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await waitForOk(`http://127.0.0.1:${port}/healthz`, 120_000, exited, 10);
  const seconds = (performance.now() - startedAt) / 1000;
  const stopGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // Already gone.
    }
  };
  stopGroup('SIGTERM');
  const killer = setTimeout(() => stopGroup('SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
  if (!ready.ok) throw new Error(`npm start did not answer (${ready.reason}).\n${stderr.trim()}`);
  return seconds;
}

export interface DatabaseState {
  /** Rows and bytes (sid, data and expiry) of the sessions table; null if it has none. */
  sessionRows: number | null;
  sessionBytes: number | null;
  /** Bytes in use in every table and index (SQLite's dbstat: page size less unused space). */
  usedBytes: number;
  /** The database file and its write-ahead log on disk. */
  fileBytes: number;
}

const sizeOf = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

export function readDatabaseState(path: string): DatabaseState {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    let sessions: { rows: number; bytes: number } | null = null;
    try {
      sessions = db
        .prepare(
          'SELECT count(*) AS rows, coalesce(sum(length(sid) + length(data) + 8), 0) AS bytes FROM sessions',
        )
        .get() as { rows: number; bytes: number };
    } catch {
      // No sessions table (sessions kept elsewhere): the whole database still counts below.
    }
    const { used } = db.prepare('SELECT coalesce(sum(pgsize - unused), 0) AS used FROM dbstat').get() as {
      used: number;
    };
    return {
      sessionRows: sessions?.rows ?? null,
      sessionBytes: sessions?.bytes ?? null,
      usedBytes: used,
      fileBytes: sizeOf(path) + sizeOf(`${path}-wal`),
    };
  } finally {
    db.close();
  }
}

/** Removes every key the Redis-backed site wrote under its own prefix. */
export async function dropRedisKeys(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for await (const found of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      const keys = Array.isArray(found) ? found : [found];
      if (keys.length > 0) await client.unlink(keys);
    }
  } finally {
    client.destroy();
  }
}
