import { z } from 'zod';
import { hasDisallowedCharacters } from '../http/validate.js';
import { ACCOUNT_PAGE_ACTIONS, REASON_MAX_CHARS } from './account-help.js';

const reasonField = z
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
  );

/**
 * An admin's action on an account, and why: the reason goes into the audit log as typed (trimmed).
 * A reset of second factors is not one of the account page's buttons: it has its own page, which
 * asks for a confirmation (resetSecondFactorsSchema).
 */
export const accountActionSchema = z.object({
  action: z.enum(ACCOUNT_PAGE_ACTIONS, { error: 'Choose what to do.' }),
  reason: reasonField,
});

/**
 * The reset of an account's second factors: the reason, and the admin's word that the owner asked
 * by a way other than this site (whoever asks by email or phone may not be the owner).
 */
export const resetSecondFactorsSchema = z.object({
  reason: reasonField,
  confirm: z.literal('yes', {
    error: 'Confirm that you checked the request with the account’s owner.',
  }),
});
