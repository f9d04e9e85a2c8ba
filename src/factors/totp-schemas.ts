import { z } from 'zod';
import { hasDisallowedCharacters } from '../http/validate.js';
import { APP_LABEL_MAX_LENGTH, DEFAULT_APP_LABEL, TOTP_DIGITS, normaliseTotpCode } from './totp.js';

const CODE_MESSAGE = `Enter the ${TOTP_DIGITS}-digit code your app shows now.`;

/** The form that confirms an authenticator app: its name (optional) and the code it shows. */
export const appEnrolmentSchema = z.object({
  label: z
    .string()
    .optional()
    .transform((value) => value ?? '')
    .refine((value) => !hasDisallowedCharacters(value), {
      error: 'The name has characters we cannot accept. Use letters, digits and spaces.',
    })
    .transform((value) => value.normalize('NFKC').trim() || DEFAULT_APP_LABEL)
    .pipe(
      z.string().max(APP_LABEL_MAX_LENGTH, {
        error: `Give the app a name of at most ${APP_LABEL_MAX_LENGTH} characters.`,
      }),
    ),
  code: z
    .string({ error: CODE_MESSAGE })
    .max(64, { error: CODE_MESSAGE })
    .transform((value, context) => {
      const code = normaliseTotpCode(value);
      if (code === null) {
        context.addIssue({ code: 'custom', message: CODE_MESSAGE });
        return z.NEVER;
      }
      return code;
    }),
});
