import argon2 from 'argon2';
import { dictionary } from '@zxcvbn-ts/language-common';

/** OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane. */
export const PASSWORD_HASH_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19 * 1024,
  timeCost: 2,
  parallelism: 1,
} as const;

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Constant-time check. Always does the same work, even for an unknown user (pass null). */
  verify(hash: string | null, password: string): Promise<boolean>;
}

export async function createArgon2Hasher(options = PASSWORD_HASH_OPTIONS): Promise<PasswordHasher> {
  // Unknown usernames are checked against this hash so that "no such user" costs the same time
  // as "wrong password" and the response time does not reveal which accounts exist.
  const decoyHash = await argon2.hash('decoy password that no one has', options);
  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      try {
        const matches = await argon2.verify(hash ?? decoyHash, password);
        return hash !== null && matches;
      } catch {
        return false;
      }
    },
  };
}

// The common-passwords list of zxcvbn-ts (about 50,000 entries from public breach corpora).
const COMMON_PASSWORDS = new Set(
  dictionary['passwords-common'].filter((word: string) => word.length >= PASSWORD_MIN_LENGTH),
);

export function isCommonPassword(password: string): boolean {
  return COMMON_PASSWORDS.has(password.toLowerCase());
}
