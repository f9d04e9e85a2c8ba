import { expect } from 'vitest';
import type { PasswordHasher } from '../../src/users/passwords.js';

/**
 * What every argon2 hasher of the site does (in this process or in the hashing child): an argon2id
 * hash that verifies its own password only, and false, never a throw, for the unknown-user decoy
 * and for a stored value that is not a hash.
 */
export async function expectArgon2HasherBehaviour(hasher: PasswordHasher): Promise<void> {
  const hash = await hasher.hash('correct horse battery staple');
  expect(hash.startsWith('$argon2id$')).toBe(true);
  expect(await hasher.verify(hash, 'correct horse battery staple')).toBe(true);
  expect(await hasher.verify(hash, 'Correct horse battery staple')).toBe(false);
  expect(await hasher.verify(null, 'decoy password that no one has')).toBe(false);
  expect(await hasher.verify('not a hash', 'x')).toBe(false);
}
