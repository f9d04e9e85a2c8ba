import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { emptyAsUndefined, httpUrl, integerInRange, optionalString } from './config-fields.js';
import {
  emailEnvShape,
  emailMissingProblems,
  emailSettingProblems,
  readEmailSettings,
  type EmailSettings,
} from './email/config.js';
import {
  factorEnvShape,
  factorMissingProblems,
  factorWarnings,
  readFactorConfig,
  type FactorConfig,
} from './factors/config.js';
import {
  fraudEnvShape,
  fraudMissingProblems,
  fraudWarnings,
  readFraudConfig,
  type FraudConfig,
} from './fraud/config.js';
import {
  providerEnvShape,
  providerListSchema,
  providerMissingProblems,
  providerProductionProblems,
  readProviderSettings,
  type ProviderSettings,
} from './mfa/providers/config.js';
import { smsHostProblem } from './mfa/sms-text.js';
import { SITE_NAME } from './site.js';
import { usernameKeyOf } from './users/username.js';

/**
 * The environment, parsed once at start. Only server.ts hands process.env to loadConfig;
 * everything else receives the typed Config. Every problem is reported at once, by name.
 */

/** express's "trust proxy" setting: false, a hop count, or a list of addresses/subnets/names. */
const trustProxySchema = z.preprocess(
  emptyAsUndefined,
  z
    .string()
    .default('loopback')
    .transform((raw, ctx): boolean | number | string[] => {
      const value = raw.trim().toLowerCase();
      if (value === 'false' || value === 'none') return false;
      if (value === 'true') {
        ctx.addIssue({
          code: 'custom',
          message: 'trusting every proxy lets any client forge its address; give a hop count or addresses',
        });
        return z.NEVER;
      }
      if (/^\d+$/.test(value)) return Number(value);
      return value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
    }),
);

const envSchema = z.object({
  NODE_ENV: z.preprocess(
    emptyAsUndefined,
    z
      .enum(['development', 'production', 'test'], { error: 'must be development, production or test' })
      .default('development'),
  ),
  PORT: integerInRange(3000, 0, 65535),
  HOST: z.preprocess(emptyAsUndefined, z.string().trim().min(1).default('127.0.0.1')),
  SESSION_SECRET: optionalString.pipe(
    z.string().min(32, { error: 'must be at least 32 characters (try: openssl rand -hex 32)' }).optional(),
  ),
  TRUST_PROXY: trustProxySchema,
  HEALTHZ_TOKEN: optionalString.pipe(
    z.string().min(32, { error: 'must be at least 32 characters (try: openssl rand -hex 32)' }).optional(),
  ),
  DATABASE_PATH: z.preprocess(emptyAsUndefined, z.string().trim().min(1).default('./data/app.db')),
  DATABASE_URL: z.preprocess(
    emptyAsUndefined,
    z
      .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL (leave it empty for SQLite)' })
      .optional(),
  ),
  REDIS_URL: z.preprocess(
    emptyAsUndefined,
    z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  ),
  REDIS_KEY_PREFIX: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9:_.-]{1,64}$/, { error: 'must be 1 to 64 letters, digits or : _ . -' })
      .default('keyhole:'),
  ),
  ADMIN_USERNAMES: optionalString,
  ADMIN_SCOPE_TTL_MINUTES: integerInRange(15, 1, 720),
  MFA_CODE_DIGITS: integerInRange(6, 4, 8),
  MFA_CODE_TTL_MINUTES: integerInRange(5, 1, 15),
  MFA_PROVIDER: providerListSchema,
  AUDIT_RETENTION_DAYS: integerInRange(90, 1, 3650),
  // Coarse flood guards per client address (0 turns one off): see src/app.ts.
  RATE_LIMIT_REQUESTS_PER_MINUTE: integerInRange(300, 0, 1_000_000),
  RATE_LIMIT_POSTS_PER_MINUTE: integerInRange(120, 0, 1_000_000),
  // Codes one key of the verification API may send an hour (0: no per-key limit): src/api/.
  API_KEY_SENDS_PER_HOUR: integerInRange(100, 0, 1_000_000),
  LOG_LEVEL: z.preprocess(
    emptyAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  // Each provider's own variables and the failover cooldown (src/mfa/providers/config.ts).
  ...providerEnvShape,

  // The site's public origin: the host in every code message and the origin of links in emails (later passkeys).
  PUBLIC_URL: z.preprocess(emptyAsUndefined, httpUrl.optional()),
  ...fraudEnvShape,
  // Who sends emails, from which address, through which SMTP server (src/email/config.ts).
  ...emailEnvShape,
  // Authenticator apps, passkeys, recovery codes: the sealing key and the policies (src/factors/config.ts).
  ...factorEnvShape,
});

type Env = z.infer<typeof envSchema>;

/** Every variable the site reads, as .env.example and the README's table list them. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

export interface Config {
  isProduction: boolean;
  port: number;
  host: string;
  sessionSecret: string;
  /** True when SESSION_SECRET was not given and a random one was made for this run. */
  sessionSecretGenerated: boolean;
  trustProxy: boolean | number | string[];
  /** In production, /healthz shows provider and store details only with this bearer token (or on loopback). */
  healthzToken?: string;
  databasePath: string;
  /** PostgreSQL for accounts, codes, challenges, sessions and the audit log; SQLite (databasePath) when absent. */
  databaseUrl?: string;
  /** Redis for sessions, counters, challenges and provider state shared by several instances. */
  redisUrl?: string;
  /** Every Redis key this site writes starts with it, so one Redis can serve several sites. */
  redisKeyPrefix: string;
  /** Seeds the admin role at start for accounts that already exist; never reserves a name. */
  adminUsernames: string[];
  adminScopeTtlMinutes: number;
  codeDigits: number;
  codeTtlMinutes: number;
  /** MFA_PROVIDER's providers with their settings, in the order failover tries them. */
  providers: ProviderSettings[];
  /** How long a provider that keeps failing is skipped before it is tried again. */
  providerCooldownSeconds: number;
  logLevel: Env['LOG_LEVEL'];
  /** Audit events older than this many days are deleted, a small batch at a time. */
  auditRetentionDays: number;
  /** Requests (all methods), then form posts, per client address and minute; 0 turns a guard off. */
  floodGuards: { requestsPerMinute: number; postsPerMinute: number };
  /** The verification API (issue 13): codes one key may send an hour; 0 means no per-key limit. */
  apiKeySendsPerHour: number;
  /** The site's public origin (PUBLIC_URL), without a trailing slash, and its host name. */
  publicUrl: string;
  publicHost: string;
  /** The toll-fraud guard: send and registration limits, countries, budget, breaker. */
  fraud: FraudConfig;
  /** EMAIL_PROVIDER with its sender and, for smtp, the server (src/email/config.ts). */
  email: EmailSettings;
  /** FACTOR_ENCRYPTION_KEY, ADMIN_STEP_UP_FACTORS and MFA_POLICY (src/factors/config.ts). */
  factors: FactorConfig;
  /** Settings allowed here but refused in production; server.ts logs them at start. */
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type VariableName = keyof Env;

/**
 * Variables that only some settings need. Checked against what is present (blank counts as
 * missing), so the same check also runs on an environment that failed the schema, and the
 * person sees every problem in one go.
 */
function missingVariableProblems(
  has: (name: VariableName) => boolean,
  chosen: { providers: readonly string[]; emailProvider: string | undefined },
  isProduction: boolean,
): string[] {
  const problems: string[] = [];
  const need = (names: VariableName[], why: string) => {
    for (const name of names) if (!has(name)) problems.push(`${name}: is required ${why}`);
  };

  if (isProduction) need(['SESSION_SECRET'], 'when NODE_ENV=production (try: openssl rand -hex 32)');
  if (isProduction)
    need(['PUBLIC_URL'], 'when NODE_ENV=production: the https origin people reach the site at');
  problems.push(...fraudMissingProblems((name) => has(name as VariableName), isProduction));
  problems.push(...providerMissingProblems(has, chosen.providers));
  problems.push(...emailMissingProblems(has, chosen.emailProvider, isProduction));
  problems.push(...factorMissingProblems((name) => has(name as VariableName), isProduction));
  return problems;
}

/** Settings that are fine on a laptop and wrong on a server people rely on. */
function productionProblems(env: Env): string[] {
  const problems = providerProductionProblems(env);
  if (env.PUBLIC_URL?.startsWith('http:')) {
    problems.push('PUBLIC_URL: must be https in production (it is the origin codes are bound to)');
  }
  return [...problems, ...standardsBoundsProblems(env)];
}

/**
 * NIST SP 800-63B and OWASP ASVS 6.5 bounds on codes and step-up: refused in production, a
 * warning elsewhere (where the wider ranges help to try things out).
 */
function standardsBoundsProblems(env: Env): string[] {
  const problems: string[] = [];
  if (env.MFA_CODE_DIGITS < 6)
    problems.push('MFA_CODE_DIGITS: must be at least 6 in production (NIST SP 800-63B)');
  if (env.MFA_CODE_TTL_MINUTES > 10) {
    problems.push('MFA_CODE_TTL_MINUTES: must be at most 10 in production (NIST SP 800-63B)');
  }
  if (env.ADMIN_SCOPE_TTL_MINUTES > 60) {
    problems.push('ADMIN_SCOPE_TTL_MINUTES: must be at most 60 in production (OWASP ASVS 6.5)');
  }
  return problems;
}

/** PUBLIC_URL as the site uses it; outside production it defaults to this machine. */
function readPublicUrl(env: Env): { publicUrl: string; publicHost: string } {
  const url = new URL(env.PUBLIC_URL ?? `http://localhost:${env.PORT}`);
  return { publicUrl: url.origin, publicHost: url.hostname };
}

/**
 * Names whose EXISTING accounts are made admins at start (see src/admin/roles.ts). No default:
 * a default name would be promoted for whoever registers it first. Kept as the accounts' own
 * username keys (usernameKeyOf: NFKC, then without case).
 */
function parseAdminUsernames(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw.split(',').map(usernameKeyOf).filter(Boolean);
}

/** Parses the environment into a Config, or throws a ConfigError naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const schemaProblems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`,
    );
    const isPresent = (name: VariableName) => (source[name] ?? '').trim() !== '';
    const namedProviders = (source.MFA_PROVIDER ?? '').split(',').map((name) => name.trim().toLowerCase());
    const missing = missingVariableProblems(
      isPresent,
      {
        providers: namedProviders,
        emailProvider: source.EMAIL_PROVIDER?.trim().toLowerCase() || undefined,
      },
      source.NODE_ENV?.trim() === 'production',
    );
    const alreadyNamed = (problem: string) =>
      schemaProblems.some((other) => other.split(':')[0] === problem.split(':')[0]);
    throw new ConfigError([...schemaProblems, ...missing.filter((problem) => !alreadyNamed(problem))]);
  }
  const env = parsed.data;
  const isProduction = env.NODE_ENV === 'production';
  const problems = missingVariableProblems(
    (name) => env[name] !== undefined,
    { providers: env.MFA_PROVIDER, emailProvider: env.EMAIL_PROVIDER },
    isProduction,
  );
  if (isProduction) problems.push(...productionProblems(env));
  problems.push(...emailSettingProblems(env, isProduction));
  const { publicUrl, publicHost } = readPublicUrl(env);
  const hostProblem = smsHostProblem(SITE_NAME, publicHost);
  if (hostProblem) problems.push(`PUBLIC_URL: ${hostProblem}`);
  if (problems.length > 0) throw new ConfigError(problems);
  const fraud = readFraudConfig(env);
  const factors = readFactorConfig(env);
  const warnings = [
    ...factorWarnings(factors, isProduction),
    ...(isProduction
      ? []
      : standardsBoundsProblems(env).map((problem) => `${problem}; allowed here only for trying things out`)),
    ...fraudWarnings(fraud),
  ];

  return {
    isProduction,
    port: env.PORT,
    host: env.HOST,
    sessionSecret: env.SESSION_SECRET ?? randomBytes(32).toString('hex'),
    sessionSecretGenerated: env.SESSION_SECRET === undefined,
    trustProxy: env.TRUST_PROXY,
    healthzToken: env.HEALTHZ_TOKEN,
    databasePath: env.DATABASE_PATH,
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    adminUsernames: parseAdminUsernames(env.ADMIN_USERNAMES),
    adminScopeTtlMinutes: env.ADMIN_SCOPE_TTL_MINUTES,
    codeDigits: env.MFA_CODE_DIGITS,
    codeTtlMinutes: env.MFA_CODE_TTL_MINUTES,
    providers: readProviderSettings(env),
    providerCooldownSeconds: env.MFA_PROVIDER_COOLDOWN_SECONDS,
    logLevel: env.LOG_LEVEL,
    auditRetentionDays: env.AUDIT_RETENTION_DAYS,
    floodGuards: {
      requestsPerMinute: env.RATE_LIMIT_REQUESTS_PER_MINUTE,
      postsPerMinute: env.RATE_LIMIT_POSTS_PER_MINUTE,
    },
    apiKeySendsPerHour: env.API_KEY_SENDS_PER_HOUR,
    publicUrl,
    publicHost,
    fraud,
    email: readEmailSettings(env, isProduction),
    factors,
    warnings,
  };
}
