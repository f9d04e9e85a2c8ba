import { z } from 'zod';
import { KEY_NAME_MAX_LENGTH } from '../api/keys.js';
import { phoneFields } from '../auth/schemas.js';
import { hasDisallowedCharacters } from '../http/validate.js';
import { CHANNELS, describeChannel, type Channel } from '../mfa/provider.js';
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

/**
 * The replacement of an account's phone number: the new number and its country (the registration
 * form's fields), the reason, and the admin's word that they checked with the owner (whoever asks
 * by email or phone to move an account to their number may not be the owner).
 */
export const replacePhoneSchema = z.object({
  ...phoneFields,
  reason: reasonField,
  confirm: z.literal('yes', {
    error: 'Confirm that you checked the request with the account’s owner.',
  }),
});

/**
 * A new API key (issue 13): a name the admin list and the audit log show, and the channels it may
 * send codes by; only channels this site's providers deliver (`deliverable`), or the key would be
 * refused on its first send. One checkbox sends a string, two send an array.
 */
export function newApiKeySchema(deliverable: readonly Channel[]) {
  return z.object({
    name: z
      .string({ error: 'Give the key a name.' })
      .refine((value) => !hasDisallowedCharacters(value), {
        error: 'The name has characters we cannot accept.',
      })
      .transform((value) => value.trim().replace(/\s+/g, ' '))
      .pipe(
        z
          .string()
          .min(1, { error: 'Give the key a name.' })
          .max(KEY_NAME_MAX_LENGTH, {
            error: `Give the key a name of at most ${KEY_NAME_MAX_LENGTH} characters.`,
          }),
      ),
    channels: z
      .preprocess(
        (value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]),
        z.array(z.enum(CHANNELS, { error: 'Choose text messages, voice calls or both.' })),
      )
      .transform((channels) => CHANNELS.filter((channel) => channels.includes(channel)))
      .refine((channels) => channels.length > 0, { error: 'Choose at least one way the key may send codes.' })
      .superRefine((channels, context) => {
        for (const channel of channels) {
          if (!deliverable.includes(channel)) {
            context.addIssue({
              code: 'custom',
              message: `No provider of this site sends codes by ${describeChannel(channel)}: choose another way.`,
            });
          }
        }
      }),
  });
}
