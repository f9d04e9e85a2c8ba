import { z } from 'zod';
import { emptyAsUndefined } from '../config-fields.js';

/**
 * The variables of the second factors (issue 12): the key that seals authenticator-app secrets and
 * keys recovery-code digests, which factors the secure area's step-up accepts, and whether the
 * second step may be turned off by the people who are not admins.
 */

/** The ways a verification can be completed. `sms` and `voice` are the account's phone. */
export const FACTOR_METHODS = ['passkey', 'totp', 'sms', 'voice', 'recovery'] as const;
export type FactorMethod = (typeof FACTOR_METHODS)[number];

/** What ADMIN_STEP_UP_FACTORS may name: never recovery codes (they are for a lost phone, not for admin work). */
export const ADMIN_STEP_UP_CHOICES = ['passkey', 'totp', 'sms', 'voice'] as const;
export type AdminStepUpFactor = (typeof ADMIN_STEP_UP_CHOICES)[number];

export const MFA_POLICIES = ['required', 'optional'] as const;
export type MfaPolicy = (typeof MFA_POLICIES)[number];

const KEY_HINT = 'must be 64 hex characters, 32 random bytes (try: openssl rand -hex 32)';

export const factorEnvShape = {
  FACTOR_ENCRYPTION_KEY: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .trim()
      .regex(/^[0-9a-fA-F]{64}$/, { error: KEY_HINT })
      .optional(),
  ),
  ADMIN_STEP_UP_FACTORS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .default('passkey,totp,sms,voice')
      .transform((raw, ctx): AdminStepUpFactor[] => {
        const names = raw
          .split(',')
          .map((name) => name.trim().toLowerCase())
          .filter(Boolean);
        const unknown = names.filter((name) => !(ADMIN_STEP_UP_CHOICES as readonly string[]).includes(name));
        if (unknown.length > 0 || names.length === 0) {
          ctx.addIssue({
            code: 'custom',
            message: `must list some of ${ADMIN_STEP_UP_CHOICES.join(', ')}, in order of preference${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
          });
          return z.NEVER;
        }
        return [...new Set(names)] as AdminStepUpFactor[];
      }),
  ),
  MFA_POLICY: z.preprocess(
    emptyAsUndefined,
    z.enum(MFA_POLICIES, { error: 'must be required or optional' }).default('required'),
  ),
};

type FactorEnv = {
  FACTOR_ENCRYPTION_KEY?: string;
  ADMIN_STEP_UP_FACTORS: AdminStepUpFactor[];
  MFA_POLICY: MfaPolicy;
};

export interface FactorConfig {
  /** FACTOR_ENCRYPTION_KEY's 32 bytes; absent outside production, where server.ts keeps one beside the database. */
  encryptionKey?: Buffer;
  /** The factors the admin step-up accepts, strongest first: it offers the first one the admin has. */
  adminStepUpFactors: AdminStepUpFactor[];
  policy: MfaPolicy;
}

export function factorMissingProblems(has: (name: string) => boolean, isProduction: boolean): string[] {
  return isProduction && !has('FACTOR_ENCRYPTION_KEY')
    ? [`FACTOR_ENCRYPTION_KEY: is required when NODE_ENV=production (${KEY_HINT})`]
    : [];
}

export function factorWarnings(factors: FactorConfig, isProduction: boolean): string[] {
  const restricted = factors.adminStepUpFactors.filter((factor) => factor === 'sms' || factor === 'voice');
  return isProduction && restricted.length > 0
    ? [
        `ADMIN_STEP_UP_FACTORS includes ${restricted.join(' and ')}: a phone code can be intercepted (SIM swap, ported number); list only passkey,totp once every admin has one`,
      ]
    : [];
}

export function readFactorConfig(env: FactorEnv): FactorConfig {
  return {
    ...(env.FACTOR_ENCRYPTION_KEY ? { encryptionKey: Buffer.from(env.FACTOR_ENCRYPTION_KEY, 'hex') } : {}),
    adminStepUpFactors: env.ADMIN_STEP_UP_FACTORS,
    policy: env.MFA_POLICY,
  };
}
