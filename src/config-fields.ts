import { z } from 'zod';

/**
 * The zod fields the feature schemas share (src/config.ts, src/mfa/providers/config.ts,
 * src/fraud/config.ts, src/email/config.ts), so a blank variable, a number or a URL is read and worded the same way
 * whichever feature it belongs to.
 */

/** A variable set to nothing (or spaces) counts as not set, as in a copied .env.example. */
export const emptyAsUndefined = (value: unknown) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

export const optionalString = z.preprocess(emptyAsUndefined, z.string().trim().optional());

export const integerInRange = (fallback: number, min: number, max: number) =>
  z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number({ error: 'must be a whole number' })
      .int({ error: 'must be a whole number' })
      .min(min, { error: `must be at least ${min}` })
      .max(max, { error: `must be at most ${max}` })
      .default(fallback),
  );

export const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** true or false; anything else (yes, 1, on) is refused rather than guessed. */
export const booleanFlag = z.preprocess(
  emptyAsUndefined,
  z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true'),
);
