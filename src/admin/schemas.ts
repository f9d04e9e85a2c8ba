import { z } from 'zod';
import { hasDisallowedCharacters } from '../http/validate.js';
import { ACCOUNT_ACTIONS, REASON_MAX_CHARS } from './account-help.js';

/** An admin's action on an account, and why: the reason goes into the audit log as typed (trimmed). */
export const accountActionSchema = z.object({
  action: z.enum(ACCOUNT_ACTIONS, { error: 'Choose what to do.' }),
  reason: z
    .string({ error: 'Say why you are doing this.' })
    .refine((value) => !hasDisallowedCharacters(value.replace(/\r?\n/g, ' ')), {
      error: 'The reason has characters we cannot accept.',
    })
    .transform((value) => value.trim().replace(/\s+/g, ' '))
    .pipe(
      z
        .string()
        .min(1, { error: 'Say why you are doing this.' })
        .max(REASON_MAX_CHARS, { error: `Say why in at most ${REASON_MAX_CHARS} characters.` }),
    ),
});
