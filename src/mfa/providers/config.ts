import { z } from 'zod';
import { emptyAsUndefined, httpUrl, integerInRange, optionalString } from '../../config-fields.js';

/**
 * The variables of the MFA providers: MFA_PROVIDER (the ordered list failover tries) and each
 * provider's own settings. src/config.ts composes them into the site's schema; the result is one
 * ProviderSettings entry per listed provider, tagged by its name, so no code has to assume that
 * the settings of a provider it was handed are present.
 */

const PROVIDER_NAMES = ['console', 'bandwidth', 'twilio', 'signalwire', 'kandy'] as const;
type ProviderName = (typeof PROVIDER_NAMES)[number];

export interface BandwidthConfig {
  accountId: string;
  /** Basic auth, or OAuth2 client credentials: exactly one of the two pairs is set. */
  username?: string;
  password?: string;
  clientId?: string;
  clientSecret?: string;
  voiceApplicationId: string;
  messagingApplicationId: string;
  fromNumber: string;
  baseUrl: string;
}

export interface TwilioConfig {
  accountSid: string;
  authToken: string;
  verifyServiceSid: string;
  baseUrl: string;
}

export interface SignalWireConfig {
  projectId: string;
  token: string;
  fromNumber: string;
  /** https://{space}.signalwire.com unless SIGNALWIRE_BASE_URL says otherwise; no trailing slash. */
  baseUrl: string;
  /** The site's public address, which SignalWire calls back to fetch a call's spoken document. */
  callbackBaseUrl: string;
}

export interface KandyConfig {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
}

/** One provider of MFA_PROVIDER with the settings it needs, told apart by its name. */
export type ProviderSettings =
  | { name: 'console' }
  | ({ name: 'bandwidth' } & BandwidthConfig)
  | ({ name: 'twilio' } & TwilioConfig)
  | ({ name: 'signalwire' } & SignalWireConfig)
  | ({ name: 'kandy' } & KandyConfig);

const DEFAULT_BANDWIDTH_MFA_BASE_URL = 'https://mfa.bandwidth.com/api/v1';
const DEFAULT_TWILIO_VERIFY_BASE_URL = 'https://verify.twilio.com';

const e164Number = optionalString.pipe(
  z
    .string()
    .regex(/^\+[1-9]\d{1,14}$/, { error: 'must be an E.164 number such as +12025550100' })
    .optional(),
);

/** MFA_PROVIDER: one name or several, in the order failover tries them. */
export const providerListSchema = z.preprocess(
  emptyAsUndefined,
  z
    .string()
    .default('console')
    .transform((raw, ctx): ProviderName[] => {
      const names = raw
        .split(',')
        .map((name) => name.trim().toLowerCase())
        .filter(Boolean);
      const unknown = names.filter((name) => !(PROVIDER_NAMES as readonly string[]).includes(name));
      if (unknown.length > 0 || names.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown provider "${unknown.join(', ') || raw}"; use one of: ${PROVIDER_NAMES.join(', ')}`,
        });
        return z.NEVER;
      }
      if (new Set(names).size !== names.length) {
        ctx.addIssue({ code: 'custom', message: 'names a provider twice' });
        return z.NEVER;
      }
      return names as ProviderName[];
    }),
);

/** Every provider variable but MFA_PROVIDER, in the order their problems are reported. */
export const providerEnvShape = {
  BW_ACCOUNT_ID: optionalString,
  BW_USERNAME: optionalString,
  BW_PASSWORD: optionalString,
  BW_CLIENT_ID: optionalString,
  BW_CLIENT_SECRET: optionalString,
  BW_VOICE_APPLICATION_ID: optionalString,
  BW_MESSAGING_APPLICATION_ID: optionalString,
  BW_NUMBER: e164Number,
  BASE_CALLBACK_URL: z.preprocess(emptyAsUndefined, httpUrl.optional()),
  BW_MFA_BASE_URL: z.preprocess(emptyAsUndefined, httpUrl.default(DEFAULT_BANDWIDTH_MFA_BASE_URL)),

  MFA_PROVIDER_COOLDOWN_SECONDS: integerInRange(30, 0, 3600),

  TWILIO_ACCOUNT_SID: optionalString,
  TWILIO_AUTH_TOKEN: optionalString,
  TWILIO_VERIFY_SERVICE_ID: optionalString,
  TWILIO_VERIFY_BASE_URL: z.preprocess(emptyAsUndefined, httpUrl.default(DEFAULT_TWILIO_VERIFY_BASE_URL)),

  // The space as the SignalWire dashboard shows it: "example" or "example.signalwire.com".
  SIGNALWIRE_SPACE: optionalString.pipe(
    z
      .string()
      .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i, {
        error: 'must be your space name, such as example or example.signalwire.com',
      })
      .optional(),
  ),
  SIGNALWIRE_PROJECT: optionalString,
  SIGNALWIRE_TOKEN: optionalString,
  SIGNALWIRE_NUMBER: e164Number,
  SIGNALWIRE_BASE_URL: z.preprocess(emptyAsUndefined, httpUrl.optional()),

  KANDY_BASE_URL: z.preprocess(emptyAsUndefined, httpUrl.optional()),
  KANDY_CLIENT_ID: optionalString,
  KANDY_CLIENT_SECRET: optionalString,
};

type ProviderVariable = keyof typeof providerEnvShape;
type ProviderEnv = z.infer<z.ZodObject<typeof providerEnvShape>> & { MFA_PROVIDER: ProviderName[] };

/**
 * The variables the listed providers need. Checked against what is present (blank counts as
 * missing), so it also runs on an environment that failed the schema, where `providers` may
 * hold names that are not providers at all.
 */
export function providerMissingProblems(
  has: (name: ProviderVariable) => boolean,
  providers: readonly string[],
): string[] {
  const problems: string[] = [];
  const need = (names: ProviderVariable[], why: string) => {
    for (const name of names) if (!has(name)) problems.push(`${name}: is required ${why}`);
  };

  if (providers.includes('bandwidth')) {
    const why = 'when MFA_PROVIDER includes bandwidth';
    need(['BW_ACCOUNT_ID', 'BW_VOICE_APPLICATION_ID', 'BW_MESSAGING_APPLICATION_ID', 'BW_NUMBER'], why);
    const usesOAuth =
      !has('BW_USERNAME') && !has('BW_PASSWORD') && (has('BW_CLIENT_ID') || has('BW_CLIENT_SECRET'));
    if (usesOAuth) need(['BW_CLIENT_ID', 'BW_CLIENT_SECRET'], `${why} and OAuth2 is used`);
    else need(['BW_USERNAME', 'BW_PASSWORD'], `${why} (or set BW_CLIENT_ID and BW_CLIENT_SECRET)`);
  }
  if (providers.includes('twilio')) {
    need(
      ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_VERIFY_SERVICE_ID'],
      'when MFA_PROVIDER includes twilio',
    );
  }
  if (providers.includes('signalwire')) {
    const why = 'when MFA_PROVIDER includes signalwire';
    need(['SIGNALWIRE_PROJECT', 'SIGNALWIRE_TOKEN', 'SIGNALWIRE_NUMBER'], why);
    if (!has('SIGNALWIRE_BASE_URL')) need(['SIGNALWIRE_SPACE'], `${why} (or set SIGNALWIRE_BASE_URL)`);
    // Voice calls fetch their spoken document from the site when the inline one is not accepted.
    need(['BASE_CALLBACK_URL'], `${why}: it is the public address SignalWire calls back for voice calls`);
  }
  if (providers.includes('kandy')) {
    need(['KANDY_BASE_URL', 'KANDY_CLIENT_ID', 'KANDY_CLIENT_SECRET'], 'when MFA_PROVIDER includes kandy');
  }
  return problems;
}

/** Provider settings that are fine on a laptop and wrong on a server people rely on. */
export function providerProductionProblems(env: ProviderEnv): string[] {
  const problems: string[] = [];
  if (env.MFA_PROVIDER.includes('console')) {
    // It would print every code and full phone number into the server's log, and reach no phone.
    problems.push(
      'MFA_PROVIDER: console only prints codes to the terminal; in production choose bandwidth, twilio, signalwire or kandy',
    );
  }
  if (env.BASE_CALLBACK_URL?.startsWith('http:')) {
    problems.push('BASE_CALLBACK_URL: must be https in production (voice documents carry codes)');
  }
  return problems;
}

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '');

/**
 * The settings of each listed provider, in MFA_PROVIDER's order. Call it only once
 * providerMissingProblems found nothing missing: a variable missing here is a bug, not a
 * person's mistake, and stops the start.
 */
export function readProviderSettings(env: ProviderEnv): ProviderSettings[] {
  const required = (name: ProviderVariable): string => {
    const value = env[name];
    if (typeof value !== 'string') throw new Error(`${name} was not checked before the providers were read`);
    return value;
  };
  return env.MFA_PROVIDER.map((name): ProviderSettings => {
    switch (name) {
      case 'console':
        return { name };
      case 'bandwidth':
        return {
          name,
          accountId: required('BW_ACCOUNT_ID'),
          username: env.BW_USERNAME,
          password: env.BW_PASSWORD,
          clientId: env.BW_CLIENT_ID,
          clientSecret: env.BW_CLIENT_SECRET,
          voiceApplicationId: required('BW_VOICE_APPLICATION_ID'),
          messagingApplicationId: required('BW_MESSAGING_APPLICATION_ID'),
          fromNumber: required('BW_NUMBER'),
          baseUrl: withoutTrailingSlash(env.BW_MFA_BASE_URL),
        };
      case 'twilio':
        return {
          name,
          accountSid: required('TWILIO_ACCOUNT_SID'),
          authToken: required('TWILIO_AUTH_TOKEN'),
          verifyServiceSid: required('TWILIO_VERIFY_SERVICE_ID'),
          baseUrl: withoutTrailingSlash(env.TWILIO_VERIFY_BASE_URL),
        };
      case 'signalwire':
        return {
          name,
          projectId: required('SIGNALWIRE_PROJECT'),
          token: required('SIGNALWIRE_TOKEN'),
          fromNumber: required('SIGNALWIRE_NUMBER'),
          baseUrl: withoutTrailingSlash(
            env.SIGNALWIRE_BASE_URL ?? signalWireOrigin(required('SIGNALWIRE_SPACE')),
          ),
          callbackBaseUrl: withoutTrailingSlash(required('BASE_CALLBACK_URL')),
        };
      case 'kandy':
        return {
          name,
          baseUrl: withoutTrailingSlash(required('KANDY_BASE_URL')),
          clientId: required('KANDY_CLIENT_ID'),
          clientSecret: required('KANDY_CLIENT_SECRET'),
        };
    }
  });
}

/** The space as the dashboard shows it, "example" or "example.signalwire.com", as an origin. */
function signalWireOrigin(space: string): string {
  const host = space.toLowerCase();
  return `https://${host.includes('.') ? host : `${host}.signalwire.com`}`;
}
