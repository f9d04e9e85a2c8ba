import { describe, expect, it } from 'vitest';
import { createArgon2Hasher, isCommonPassword } from '../../src/users/passwords.js';

/**
 * What an argon2 hash says about itself in its PHC string, e.g.
 * $argon2id$v=19$m=19456,p=1,t=2$salt$hash (the parameters in any order).
 */
function argon2ParametersOf(hash: string) {
  const match =
    /^\$(argon2(?:id|i|d))\$v=(\d+)\$([a-z]=\d+(?:,[a-z]=\d+)*)\$([A-Za-z0-9+/]+)\$[A-Za-z0-9+/]+$/.exec(
      hash,
    );
  if (!match) throw new Error(`not an argon2 PHC string: ${hash}`);
  const [, type, version, list = '', salt] = match;
  const parameters = new Map(list.split(',').map((pair) => [pair[0], Number(pair.slice(2))] as const));
  return {
    type,
    version: Number(version),
    memoryKiB: parameters.get('m'),
    passes: parameters.get('t'),
    lanes: parameters.get('p'),
    salt,
  };
}

describe('password hashing', () => {
  it('stores argon2id hashes made with at least OWASP’s minimum cost (19 MiB, 2 passes, 1 lane)', async () => {
    // Threat: a stolen user table is cracked offline; the cost written into each hash is what
    // the attacker pays per guess, so read it from a hash the site's own hasher made.
    const hasher = await createArgon2Hasher();
    const parameters = argon2ParametersOf(await hasher.hash('correct horse battery staple'));

    expect(parameters.type).toBe('argon2id');
    expect(parameters.version).toBe(19);
    expect(parameters.memoryKiB).toBeGreaterThanOrEqual(19_456);
    expect(parameters.passes).toBeGreaterThanOrEqual(2);
    expect(parameters.lanes).toBe(1);
  });

  it('gives every hash its own salt, so equal passwords do not share a hash', async () => {
    const hasher = await createArgon2Hasher();
    const first = await hasher.hash('correct horse battery staple');
    const second = await hasher.hash('correct horse battery staple');

    expect(first).not.toBe(second);
    expect(argon2ParametersOf(first).salt).not.toBe(argon2ParametersOf(second).salt);
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
