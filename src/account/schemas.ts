import { z } from 'zod';
import {
  channelField,
  emailField,
  givenPasswordField,
  newPasswordField,
  phoneFields,
} from '../auth/schemas.js';
import { hasDisallowedCharacters } from '../http/validate.js';

/** The forms of /account/security (issue 11): the same field rules as registration. */

export const changePasswordSchema = z.object({
  current_password: givenPasswordField('current password', 'That is not your current password.'),
  new_password: newPasswordField('new password'),
});

export const changePhoneSchema = z.object(phoneFields);

export const changeChannelSchema = z.object({ channel: channelField });

export const changeEmailSchema = z.object({ email: emailField });

/** A session named on the page by its handle (a SHA-256 of its id, base64url), never by the id. */
export const endSessionSchema = z.object({
  session: z
    .string({ error: 'Choose a session to end.' })
    .regex(/^[A-Za-z0-9_-]{43}$/, { error: 'That session is not one of yours.' }),
});

/** /forgot: a username or an email address, as typed (the lookup decides which it is). */
export const forgotSchema = z.object({
  identifier: z
    .string({ error: 'Enter your username or email address.' })
    .refine((value) => !hasDisallowedCharacters(value), {
      error: 'What you typed has characters we cannot accept.',
    })
    .transform((value) => value.trim())
    .pipe(
      z
        .string()
        .min(1, { error: 'Enter your username or email address.' })
        .max(254, { error: 'Enter a username or an email address of at most 254 characters.' }),
    ),
});

/** The new password after a reset: the registration rules, typed twice (nobody sees it). */
export const resetPasswordSchema = z
  .object({
    new_password: newPasswordField(),
    confirm_password: z.string({ error: 'Type the new password again.' }),
  })
  .superRefine((form, context) => {
    if (form.confirm_password.normalize('NFKC') !== form.new_password) {
      context.addIssue({
        code: 'custom',
        path: ['confirm_password'],
        message: 'The two passwords are not the same. Type the new password again.',
      });
    }
  });

/** A remembered browser of the security page's list, by its id. */
export const forgetBrowserSchema = z.object({
  browser: z
    .string({ error: 'Choose a browser to forget.' })
    .regex(/^[1-9]\d{0,9}$/, { error: 'That browser is not one of yours.' })
    .transform(Number),
});

/** MFA_POLICY=optional: the second step of the login, off or on. */
export const twoStepSchema = z.object({
  two_step: z.enum(['off', 'on'], { error: 'Choose whether two-step login is on or off.' }),
});
