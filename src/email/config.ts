import { isIP } from 'node:net';
import { z } from 'zod';
import { emptyAsUndefined, optionalString } from '../config-fields.js';
import { SITE_NAME } from '../site.js';
import { parseMailbox, type Mailbox } from './address.js';

/**
 * The variables of email: EMAIL_PROVIDER, the sender (EMAIL_FROM) and the SMTP server. src/config.ts
 * composes them into the site's schema; the result is one EmailSettings, tagged by its provider, so
 * the SMTP settings exist exactly when SMTP is chosen.
 */

export const EMAIL_PROVIDERS = ['console', 'smtp'] as const;
export type EmailProviderName = (typeof EMAIL_PROVIDERS)[number];

export interface SmtpSettings {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (port 465, smtps://); otherwise STARTTLS when offered. */
  secure: boolean;
  /**
   * Refuse to go on unless STARTTLS succeeds: set in production for every host but this machine,
   * so that a man in the middle who strips STARTTLS cannot read the password and the links.
   */
  requireTLS: boolean;
  auth?: { user: string; password: string };
}

export type EmailSettings =
  { provider: 'console'; from: Mailbox } | { provider: 'smtp'; from: Mailbox; smtp: SmtpSettings };

/** The console provider's sender when EMAIL_FROM is not set; it only ever reaches the terminal. */
export const DEFAULT_CONSOLE_FROM: Mailbox = { name: SITE_NAME, address: 'no-reply@localhost' };

const SMTP_PORT = 587;
const SMTPS_PORT = 465;

/** SMTP_URL, read: the host, the port if given, whether TLS is implicit, and any credentials. */
interface SmtpUrl {
  host: string;
  port?: number;
  secure: boolean;
  user?: string;
  password?: string;
}

/** Host names and addresses, IPv6 with or without brackets. */
const HOST_PATTERN =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?|\[?[0-9A-Fa-f:.]+\]?)$/;

const withoutBrackets = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

function decodeCredential(raw: string): string | undefined {
  try {
    return raw === '' ? undefined : decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

// The messages below never repeat the value: SMTP_URL may carry a password.
const smtpUrlSchema = z.string().transform((raw, ctx): SmtpUrl => {
  const refuse = (message: string) => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('must be a URL such as smtp://user:password@smtp.example.com:587 or smtps://…:465');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    return refuse('must start with smtp:// (STARTTLS) or smtps:// (TLS from the start)');
  }
  if (url.hostname === '' || !HOST_PATTERN.test(url.hostname))
    return refuse('must name the mail server’s host');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    return refuse('takes no path or ?options: use SMTP_SECURE and the other SMTP_ variables for settings');
  }
  const user = decodeCredential(url.username);
  const password = decodeCredential(url.password);
  if ((user === undefined) !== (password === undefined)) {
    return refuse('must carry both a user and a password (percent-encoded), or neither');
  }
  return {
    host: withoutBrackets(url.hostname),
    port: url.port === '' ? undefined : Number(url.port),
    secure: url.protocol === 'smtps:',
    user,
    password,
  };
});

const mailboxSchema = z.string().transform((raw, ctx): Mailbox => {
  const mailbox = parseMailbox(raw);
  if (mailbox) return mailbox;
  ctx.addIssue({
    code: 'custom',
    message: 'must be one address, such as no-reply@example.com or Keyhole <no-reply@example.com>',
  });
  return z.NEVER;
});

export const emailEnvShape = {
  EMAIL_PROVIDER: z.preprocess(
    (value) => (typeof value === 'string' ? emptyAsUndefined(value.trim().toLowerCase()) : value),
    z.enum(EMAIL_PROVIDERS, { error: 'must be console or smtp' }).optional(),
  ),
  EMAIL_FROM: optionalString.pipe(mailboxSchema.optional()),
  SMTP_URL: optionalString.pipe(smtpUrlSchema.optional()),
  SMTP_HOST: optionalString.pipe(
    z
      .string()
      .regex(HOST_PATTERN, { error: 'must be a host name or address, such as smtp.example.com' })
      .transform(withoutBrackets)
      .optional(),
  ),
  SMTP_PORT: z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number({ error: 'must be a port number, 1 to 65535' })
      .int({ error: 'must be a port number, 1 to 65535' })
      .min(1, { error: 'must be a port number, 1 to 65535' })
      .max(65535, { error: 'must be a port number, 1 to 65535' })
      .optional(),
  ),
  SMTP_SECURE: z.preprocess(
    (value) => (typeof value === 'string' ? emptyAsUndefined(value.trim().toLowerCase()) : value),
    z
      .enum(['true', 'false'], { error: 'must be true (TLS from the start, port 465) or false (STARTTLS)' })
      .optional(),
  ),
  SMTP_USER: optionalString,
  // Not trimmed: spaces at either end may be part of a password.
  SMTP_PASSWORD: z.preprocess(emptyAsUndefined, z.string().optional()),
};

type EmailVariable = keyof typeof emailEnvShape;
type EmailEnv = z.infer<z.ZodObject<typeof emailEnvShape>>;

/**
 * The variables the chosen provider needs, and the ones that contradict each other. Checked against
 * what is present (blank counts as missing), so it also runs on an environment that failed the
 * schema, where `provider` may be no provider at all.
 */
export function emailMissingProblems(
  has: (name: EmailVariable) => boolean,
  provider: string | undefined,
  isProduction: boolean,
): string[] {
  const problems: string[] = [];
  if (isProduction && provider === undefined) {
    problems.push(
      'EMAIL_PROVIDER: is required when NODE_ENV=production: smtp, with SMTP_URL or SMTP_HOST (console only prints emails to the terminal)',
    );
  }
  if (provider !== 'smtp') return problems;
  if (!has('EMAIL_FROM')) {
    problems.push(
      'EMAIL_FROM: is required when EMAIL_PROVIDER=smtp: the sender people see, such as Keyhole <no-reply@example.com>',
    );
  }
  if (has('SMTP_URL')) {
    for (const name of ['SMTP_HOST', 'SMTP_PORT', 'SMTP_SECURE'] as const) {
      if (has(name)) problems.push(`${name}: leave it empty when SMTP_URL is set (the URL says it)`);
    }
  } else if (!has('SMTP_HOST')) {
    problems.push('SMTP_HOST: is required when EMAIL_PROVIDER=smtp (or set SMTP_URL)');
  }
  if (has('SMTP_USER') && !has('SMTP_PASSWORD')) {
    problems.push('SMTP_PASSWORD: is required when SMTP_USER is set');
  }
  if (has('SMTP_PASSWORD') && !has('SMTP_USER')) {
    problems.push('SMTP_USER: is required when SMTP_PASSWORD is set');
  }
  return problems;
}

/** Values that parse on their own but not together, and what production refuses. */
export function emailSettingProblems(env: EmailEnv, isProduction: boolean): string[] {
  const problems: string[] = [];
  if (isProduction && env.EMAIL_PROVIDER === 'console') {
    // It would print every reset link and address into the server's log, and reach no one.
    problems.push('EMAIL_PROVIDER: console only prints emails to the terminal; in production choose smtp');
  }
  if (env.EMAIL_PROVIDER === 'smtp' && env.SMTP_URL?.user !== undefined) {
    for (const name of ['SMTP_USER', 'SMTP_PASSWORD'] as const) {
      if (env[name] !== undefined) {
        problems.push(`${name}: leave it empty when SMTP_URL carries a user and password`);
      }
    }
  }
  return problems;
}

/** This machine: a relay here is reached without crossing a network, so plain SMTP is fine. */
export function isLoopbackHost(host: string): boolean {
  const name = withoutBrackets(host).toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || /^::ffff:127\./.test(name);
  return false;
}

/**
 * The settings of the chosen provider. Call it only once emailMissingProblems found nothing
 * missing: a variable missing here is a bug, not a person's mistake, and stops the start.
 */
export function readEmailSettings(env: EmailEnv, isProduction: boolean): EmailSettings {
  if ((env.EMAIL_PROVIDER ?? 'console') === 'console') {
    return { provider: 'console', from: env.EMAIL_FROM ?? DEFAULT_CONSOLE_FROM };
  }
  const url = env.SMTP_URL;
  const host = url?.host ?? env.SMTP_HOST;
  if (host === undefined || env.EMAIL_FROM === undefined) {
    throw new Error('the SMTP variables were not checked before the email settings were read');
  }
  const secure = url?.secure ?? env.SMTP_SECURE === 'true';
  const user = url?.user ?? env.SMTP_USER;
  const password = url?.password ?? env.SMTP_PASSWORD;
  return {
    provider: 'smtp',
    from: env.EMAIL_FROM,
    smtp: {
      host,
      port: url?.port ?? env.SMTP_PORT ?? (secure ? SMTPS_PORT : SMTP_PORT),
      secure,
      requireTLS: isProduction && !secure && !isLoopbackHost(host),
      ...(user !== undefined && password !== undefined ? { auth: { user, password } } : {}),
    },
  };
}
