import { z } from 'zod';
import { CHANNELS } from './provider.js';

/** The code as typed or pasted: spaces and dashes ("123 456", "123-456") are ignored. */
export function codeSchema(digits: number) {
  return z.object({
    code: z
      .string({ error: `Enter the ${digits}-digit code.` })
      .max(64, { error: `Enter the ${digits}-digit code.` })
      .transform((value) => value.normalize('NFKC').replace(/[\s-]/g, ''))
      .pipe(z.string().regex(new RegExp(`^\\d{${digits}}$`), { error: `Enter the ${digits}-digit code.` })),
  });
}

export const resendSchema = z.object({
  channel: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.enum(CHANNELS, { error: 'Choose text message or voice call.' }).optional(),
  ),
});
