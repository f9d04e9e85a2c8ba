import type { z } from 'zod';

export interface FieldError {
  field: string;
  message: string;
}

export type FormResult<T> = { ok: true; data: T } | { ok: false; errors: FieldError[] };

/** Parses a form body with a zod schema; on failure, one plain message per field, in form order. */
export function parseForm<T>(schema: z.ZodType<T>, body: unknown): FormResult<T> {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return { ok: true, data: parsed.data };
  const errors: FieldError[] = [];
  for (const issue of parsed.error.issues) {
    const field = String(issue.path[0] ?? 'form');
    if (!errors.some((error) => error.field === field)) errors.push({ field, message: issue.message });
  }
  return { ok: false, errors };
}

/** Control characters, bidi overrides and other invisible code points have no place in a form field. */
const DISALLOWED_CHARACTERS = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}]/u;

export function hasDisallowedCharacters(value: string): boolean {
  return DISALLOWED_CHARACTERS.test(value);
}
