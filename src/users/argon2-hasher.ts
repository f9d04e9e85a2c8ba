import argon2 from 'argon2';
import type { PASSWORD_HASH_OPTIONS, PasswordHasher } from './passwords.js';

/**
 * argon2id at `cost`, with no queue in front: the work itself, shared by the in-process hasher
 * and the hashing child process. It loads argon2 and nothing else (no common-password list),
 * so the child can import it after lowering its priority.
 */
export async function createArgon2idHasher(cost: typeof PASSWORD_HASH_OPTIONS): Promise<PasswordHasher> {
  // Unknown usernames are checked against this hash so that "no such user" costs the same time
  // as "wrong password" and the response time does not reveal which accounts exist.
  const decoyHash = await argon2.hash('decoy password that no one has', cost);
  return {
    hash: (password) => argon2.hash(password, cost),
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
