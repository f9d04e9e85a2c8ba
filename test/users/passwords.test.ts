import { describe, expect, it } from 'vitest';
import { PASSWORD_HASH_OPTIONS, createArgon2Hasher, isCommonPassword } from '../../src/users/passwords.js';

describe('password hashing', () => {
  it('uses argon2id with at least OWASP’s minimum cost', () => {
    expect(PASSWORD_HASH_OPTIONS.memoryCost).toBeGreaterThanOrEqual(19 * 1024);
    expect(PASSWORD_HASH_OPTIONS.timeCost).toBeGreaterThanOrEqual(2);
    expect(PASSWORD_HASH_OPTIONS.parallelism).toBe(1);
  });

  it('verifies the right password and refuses others, and a missing hash, without throwing', async () => {
    const hasher = await createArgon2Hasher();
    const hash = await hasher.hash('correct horse battery staple');
    expect(hash.startsWith('$argon2id$')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await hasher.verify(hash, 'Correct horse battery staple')).toBe(false);
    expect(await hasher.verify(null, 'decoy password that no one has')).toBe(false);
    expect(await hasher.verify('not a hash', 'x')).toBe(false);
  });

  it('does not block the event loop while hashing', async () => {
    const hasher = await createArgon2Hasher();
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 1);
    await Promise.all([hasher.hash('one long passphrase'), hasher.hash('another long passphrase')]);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('isCommonPassword', () => {
  it.each(['password', 'Password1', '12345678', 'qwertyuiop', 'iloveyou1'])('knows %j', (password) => {
    expect(isCommonPassword(password)).toBe(true);
  });
  it('lets a passphrase through', () => {
    expect(isCommonPassword('correct horse battery staple')).toBe(false);
  });
});
