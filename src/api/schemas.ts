import { z } from 'zod';
import { CHANNELS, type Channel } from '../mfa/provider.js';
import { parsePhone } from '../users/phone.js';
import type { FieldError } from './problem.js';

/**
 * The API's request bodies. Strict objects: a field the API does not know is refused (422), so a
 * caller's typo ("chanel") is never silently read as the default.
 */

const E164 = /^\+[1-9]\d{1,14}$/;

/** A missing field is said to be missing; a wrong one is told what it should be. */
const expected = (field: string, message: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? `${field} is required.` : message),
});
const LABEL = /^[a-z0-9][a-z0-9_.-]{0,39}$/;
export const DEFAULT_LABEL = 'default';

/** An E.164 number that the site itself would take (libphonenumber, as src/users/phone.ts). */
const phoneNumber = (field: string) =>
  z
    .string(expected(field, `Give ${field} as a string in E.164 form, for example "+12025550100".`))
    .max(20, { error: `Give ${field} in E.164 form, for example "+12025550100".` })
    .regex(E164, { error: `Give ${field} in E.164 form, for example "+12025550100".` })
    .transform((value, ctx) => {
      const parsed = parsePhone(value);
      if (!parsed.ok) {
        ctx.addIssue({ code: 'custom', message: parsed.message });
        return z.NEVER;
      }
      return parsed.e164;
    });

const channel = (fallback: Channel) =>
  z.enum(CHANNELS, { error: 'Give channel as "sms" or "voice".' }).default(fallback);

/** 1 to 40 characters of a-z, 0-9, _ . - (letters folded to lower case), starting with a letter or digit. */
const label = z
  .string({ error: 'Give label as a string.' })
  .max(40, { error: 'A label has at most 40 characters.' })
  .transform((value) => value.toLowerCase())
  .pipe(
    z.string().regex(LABEL, {
      error: 'A label is 1 to 40 characters of a-z, 0-9, "_", "." and "-", starting with a letter or digit.',
    }),
  )
  .default(DEFAULT_LABEL);

/** Digits only, as many as the site's codes have. */
const code = (digits: number, field: string) =>
  z
    .string(expected(field, `Give ${field} as a string of ${digits} digits.`))
    .regex(new RegExp(`^\\d{${digits}}$`), { error: `A code is ${digits} digits.` });

export const sendVerificationSchema = z.strictObject({
  to: phoneNumber('to'),
  channel: channel('sms'),
  label,
});

export const checkVerificationSchema = (digits: number) => z.strictObject({ code: code(digits, 'code') });

/** The voice sample's POST /request-auth: a call by default. */
export const requestAuthSchema = z.strictObject({
  number: phoneNumber('number'),
  channel: channel('voice'),
  label,
});

/** The voice sample's POST /validate-auth. */
export const validateAuthSchema = (digits: number) =>
  z.strictObject({ number: phoneNumber('number'), auth_code: code(digits, 'auth_code'), label });

export type ParsedBody<T> = { ok: true; data: T } | { ok: false; errors: FieldError[] };

/** Parses a body; on failure, one message per field, an unknown field named as such. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): ParsedBody<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, data: parsed.data };
  const errors: FieldError[] = [];
  const add = (field: string, message: string) => {
    if (!errors.some((error) => error.field === field)) errors.push({ field, message });
  };
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add(key, 'This field is not known here.');
    } else {
      add(String(issue.path[0] ?? 'body'), issue.message);
    }
  }
  return { ok: false, errors };
}
