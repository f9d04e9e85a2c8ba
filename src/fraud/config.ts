import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';
import { booleanFlag, emptyAsUndefined, integerInRange } from '../config-fields.js';
import { UNKNOWN_COUNTRY } from './destination.js';

/**
 * The variables of the toll-fraud guard: a zod shape that src/config.ts spreads into the site's
 * schema, and the typed FraudConfig it becomes. The defaults are the limits of issue 8.
 */

export const FRAUD_GUARD_MODES = ['enforce', 'record'] as const;
export type FraudGuardMode = (typeof FRAUD_GUARD_MODES)[number];

export interface SendLimits {
  perNumberPer10Minutes: number;
  perNumberPerDay: number;
  perAddressPerHour: number;
  perAddressPerDay: number;
  countriesPerAddressPerDay: number;
}

export interface RegistrationLimits {
  perAddressPerHour: number;
  accountsPerPhone: number;
}

export interface FraudConfig {
  /** enforce refuses; record only logs and counts what it would have refused. */
  mode: FraudGuardMode;
  /**
   * ISO 3166 alpha-2 codes that codes may be sent to, or '*' for every country. Numbers of no
   * country (satellite and global networks, classic toll-fraud ranges) only when 'ZZ' is listed.
   */
  countries: '*' | string[];
  /** Codes in all, across the site, per UTC day. */
  budgetPerDay: number;
  send: SendLimits;
  registration: RegistrationLimits;
  /** The conversion breaker's floor: codes a day to never-verified numbers of a country. */
  breakerMinPerDay: number;
  allowVoipNumbers: boolean;
}

/** Every limit here is a whole number of at least 1. */
const count = (fallback: number, max = 1_000_000) => integerInRange(fallback, 1, max);

const countryListSchema = z.preprocess(
  emptyAsUndefined,
  z
    .string()
    .optional()
    .transform((raw, ctx): '*' | string[] | undefined => {
      if (raw === undefined) return undefined;
      const codes = raw
        .split(/[\s,]+/)
        .map((code) => code.trim().toUpperCase())
        .filter(Boolean);
      if (codes.length === 1 && codes[0] === '*') return '*';
      if (codes.includes('*')) {
        ctx.addIssue({
          code: 'custom',
          message: `* stands alone (every country, numbers of no country excepted); to list ${UNKNOWN_COUNTRY} too, name the countries: US,CA,${UNKNOWN_COUNTRY}`,
        });
        return z.NEVER;
      }
      const unknown = codes.filter(
        (code) => code !== UNKNOWN_COUNTRY && (!/^[A-Z]{2}$/.test(code) || !isSupportedCountry(code)),
      );
      if (unknown.length > 0 || codes.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown country code ${unknown.join(', ') || raw}; use ISO 3166 codes such as US,CA,GB, ${UNKNOWN_COUNTRY} for numbers of no country, or * for all countries`,
        });
        return z.NEVER;
      }
      return [...new Set(codes)];
    }),
);

export const fraudEnvShape = {
  FRAUD_GUARD: z.preprocess(
    (value) => (typeof value === 'string' ? emptyAsUndefined(value.trim().toLowerCase()) : value),
    z.enum(FRAUD_GUARD_MODES, { error: 'must be enforce or record' }).default('enforce'),
  ),
  SMS_COUNTRIES: countryListSchema,
  SEND_BUDGET_PER_DAY: count(1000, 100_000_000),
  SEND_LIMIT_PER_NUMBER_10MIN: count(3),
  SEND_LIMIT_PER_NUMBER_DAY: count(10),
  SEND_LIMIT_PER_ADDRESS_HOUR: count(10),
  SEND_LIMIT_PER_ADDRESS_DAY: count(30),
  SEND_LIMIT_COUNTRIES_PER_ADDRESS_DAY: count(3),
  SEND_BREAKER_MIN_PER_DAY: count(20),
  REGISTER_LIMIT_PER_ADDRESS_HOUR: count(5),
  REGISTER_LIMIT_ACCOUNTS_PER_PHONE: count(3),
  ALLOW_VOIP_NUMBERS: booleanFlag,
};

type FraudEnv = z.infer<z.ZodObject<typeof fraudEnvShape>>;

/** What production needs set explicitly: there, which countries may cost money is the operator's call. */
export function fraudMissingProblems(has: (name: string) => boolean, isProduction: boolean): string[] {
  if (isProduction && !has('SMS_COUNTRIES')) {
    return [
      'SMS_COUNTRIES: is required when NODE_ENV=production: list the countries codes may be sent to (e.g. US,CA), or * for all',
    ];
  }
  return [];
}

/** Said at every start while the guard only records, so record mode is never forgotten on. */
export function fraudWarnings(fraud: FraudConfig): string[] {
  return fraud.mode === 'record'
    ? [
        'FRAUD_GUARD=record: the toll-fraud limits refuse nothing; they only log and count what they would refuse',
      ]
    : [];
}

export function readFraudConfig(env: FraudEnv): FraudConfig {
  return {
    mode: env.FRAUD_GUARD,
    countries: env.SMS_COUNTRIES ?? '*',
    budgetPerDay: env.SEND_BUDGET_PER_DAY,
    send: {
      perNumberPer10Minutes: env.SEND_LIMIT_PER_NUMBER_10MIN,
      perNumberPerDay: env.SEND_LIMIT_PER_NUMBER_DAY,
      perAddressPerHour: env.SEND_LIMIT_PER_ADDRESS_HOUR,
      perAddressPerDay: env.SEND_LIMIT_PER_ADDRESS_DAY,
      countriesPerAddressPerDay: env.SEND_LIMIT_COUNTRIES_PER_ADDRESS_DAY,
    },
    registration: {
      perAddressPerHour: env.REGISTER_LIMIT_PER_ADDRESS_HOUR,
      accountsPerPhone: env.REGISTER_LIMIT_ACCOUNTS_PER_PHONE,
    },
    breakerMinPerDay: env.SEND_BREAKER_MIN_PER_DAY,
    allowVoipNumbers: env.ALLOW_VOIP_NUMBERS,
  };
}
