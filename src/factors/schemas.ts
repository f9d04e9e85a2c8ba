import { z } from 'zod';
import { codeSchema } from '../mfa/schemas.js';

/**
 * The code page's forms for the factors the site checks itself. An authenticator app's code is
 * always 6 digits (RFC 6238 as apps use it), whatever MFA_CODE_DIGITS says of the site's own codes.
 */
export const TOTP_DIGITS = 6;

/** A passkey's answer is a few hundred bytes of JSON; far more is no answer. */
const MAX_CREDENTIAL_CHARS = 16_384;

export const factorFormSchemas = {
  totp: codeSchema(TOTP_DIGITS),
  recovery: z.object({
    recovery_code: z
      .string({ error: 'Enter one of your recovery codes.' })
      .trim()
      .min(1, { error: 'Enter one of your recovery codes.' })
      .max(64, { error: 'That is not a recovery code: they are 16 letters and digits, in 4 groups.' }),
  }),
  passkey: z.object({
    credential: z
      .string({ error: 'Your passkey did not answer. Try again.' })
      .min(1, { error: 'Your passkey did not answer. Try again.' })
      .max(MAX_CREDENTIAL_CHARS, { error: 'Your passkey’s answer could not be read. Try again.' }),
  }),
};

/** "Try another way": which factor the page should show. */
export const chooseMethodSchema = z.object({
  method: z.enum(['totp', 'passkey', 'recovery'], { error: 'Choose one of the ways listed.' }),
});
