import { z } from 'zod';
import { CHANNELS } from '../mfa/provider.js';
import { hasDisallowedCharacters } from '../http/validate.js';
import { normaliseUsername } from '../users/username.js';
import { isEmailAddress } from '../email/address.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, isCommonPassword } from '../users/passwords.js';

const codePointLength = (value: string) => [...value].length;

/** A string field: one value (not a list), no invisible or control characters. */
const field = (name: string) =>
  z.string({ error: `Enter your ${name}.` }).refine((value) => !hasDisallowedCharacters(value), {
    error: `Your ${name} has characters we cannot accept.`,
  });

export const channelField = z.enum(CHANNELS, { error: 'Choose text message or voice call.' });

/**
 * A phone number and, for one written without +, its country: registration, its correction, and
 * a new number on /account/security.
 */
export const phoneFields = {
  phone: field('phone number')
    .transform((value) => value.trim())
    .pipe(
      z
        .string()
        .min(1, { error: 'Enter your phone number.' })
        .max(32, { error: 'Enter a phone number of at most 32 characters.' })
        .regex(/^[+\d\s().-]+$/, { error: 'Enter a phone number using digits, spaces and an optional +.' }),
    ),
  country: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    z
      .string({ error: 'Choose a country from the list.' })
      .trim()
      .toUpperCase()
      .regex(/^[A-Z]{2}$/, { error: 'Choose a country from the list.' })
      .optional(),
  ),
};

/**
 * An email address: where a reset link and notices can go. Checked by the same rule every
 * recipient passes (src/email/address.ts), so what is accepted here can always be sent to.
 */
export const emailField = field('email address')
  .transform((value) => value.trim())
  .pipe(
    z
      .string()
      .min(1, { error: 'Enter your email address.' })
      .max(254, { error: 'Enter an email address of at most 254 characters.' })
      .refine(isEmailAddress, { error: 'Enter an email address like name@example.com.' }),
  );

/** An email address, or nothing (an empty field): registration's optional one. */
export const optionalEmailField = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  emailField.optional(),
);

/**
 * A password someone chooses (registration, a change on /account/security, a reset): NFKC, 8 to
 * 128 characters, and not one of the most common ones. `name` is how its messages call it.
 */
export const newPasswordField = (name = 'password') =>
  field(name)
    .transform((value) => value.normalize('NFKC'))
    .refine((value) => codePointLength(value) >= PASSWORD_MIN_LENGTH, {
      error: `Choose a ${name} of at least ${PASSWORD_MIN_LENGTH} characters.`,
    })
    .refine((value) => codePointLength(value) <= PASSWORD_MAX_LENGTH, {
      error: `Choose a ${name} of at most ${PASSWORD_MAX_LENGTH} characters.`,
    })
    .refine((value) => !isCommonPassword(value), {
      error: `This ${name} is one of the most common ones, so it is easy to guess. Choose another.`,
    });

/** A password given to prove who one is (login, the current one before a change): not judged, only bounded. */
export const givenPasswordField = (name = 'password', tooLong = 'Invalid username or password.') =>
  field(name)
    .transform((value) => value.normalize('NFKC'))
    .pipe(
      z
        .string()
        .min(1, { error: `Enter your ${name}.` })
        .refine((value) => codePointLength(value) <= PASSWORD_MAX_LENGTH, { error: tooLong }),
    );

export const registerSchema = z.object({
  username: field('username')
    .transform(normaliseUsername)
    .pipe(
      z
        .string()
        .min(3, { error: 'Choose a username of at least 3 characters.' })
        .max(32, { error: 'Choose a username of at most 32 characters.' })
        .regex(/^[A-Za-z0-9._-]+$/, {
          error: 'Use only letters, digits, dots, dashes and underscores in your username.',
        }),
    ),
  password: newPasswordField(),
  ...phoneFields,
  channel: channelField,
  email: optionalEmailField,
});

export const loginSchema = z.object({
  username: field('username')
    .transform(normaliseUsername)
    .pipe(
      z
        .string()
        .min(1, { error: 'Enter your username.' })
        .max(64, { error: 'Invalid username or password.' }),
    ),
  password: givenPasswordField(),
  /** Optional: without it, the account's saved preference is used. */
  channel: z.preprocess((value) => (value === '' ? undefined : value), channelField.optional()),
  next: z.string().max(512).optional().catch(undefined),
});

/** The number, corrected on the sign-up code page. */
export const correctNumberSchema = z.object(phoneFields);
