import { z } from 'zod';
import {
  channelField,
  emailField,
  givenPasswordField,
  newPasswordField,
  phoneFields,
} from '../auth/schemas.js';

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
