import { describe, expect, it } from 'vitest';
import {
  HashingAbandonedError,
  HashingBusyError,
  createArgon2Hasher,
  defaultHashingLimits,
  isCommonPassword,
  limitConcurrentHashing,
  type PasswordHasher,
} from '../../src/users/passwords.js';
import { createHeldHasher } from '../helpers/held-hasher.js';
import { expectArgon2HasherBehaviour } from '../helpers/password-hasher.js';

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
    await expectArgon2HasherBehaviour(hasher);
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

// Threat: a burst of logins (or a flood of them) taking every core for argon2, so that every
// page waits; or queueing without end until memory runs out.
describe('the hashing queue', () => {
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('runs at most `concurrency` hashes at once, the rest in their order of arrival', async () => {
    const inner = createHeldHasher();
    const hasher = limitConcurrentHashing(inner.hasher, { concurrency: 2, maxWaiting: 10 });
    inner.hold();
    const order: string[] = [];
    const done = ['a', 'b', 'c', 'd', 'e'].map((password) =>
      hasher.hash(password).then(() => order.push(password)),
    );
    await settle();
    expect(inner.running).toBe(2);
    expect(inner.calls.map((call) => call.password)).toEqual(['a', 'b']);

    inner.releaseOne();
    await settle();
    expect(inner.running).toBe(2);
    expect(inner.calls.map((call) => call.password)).toEqual(['a', 'b', 'c']);

    inner.release();
    await Promise.all(done);
    expect(inner.maxRunning).toBe(2);
    expect(inner.calls.map((call) => call.password)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(order).toHaveLength(5);
  });

  it('refuses the one past `concurrency` + `maxWaiting` at once with a 503 HashingBusyError', async () => {
    const inner = createHeldHasher();
    const hasher = limitConcurrentHashing(inner.hasher, { concurrency: 1, maxWaiting: 2 });
    inner.hold();
    const admitted = [hasher.hash('a'), hasher.verify(null, 'b'), hasher.verify('fake:c', 'c')];
    const refused = hasher.hash('d');
    await expect(refused).rejects.toBeInstanceOf(HashingBusyError);
    await expect(refused).rejects.toMatchObject({ status: 503, retryAfterSeconds: 5 });
    expect(inner.calls).toHaveLength(1);

    inner.release();
    expect(await Promise.all(admitted)).toEqual(['fake:a', false, true]);
    // Room again once the queue has drained.
    expect(await hasher.hash('e')).toBe('fake:e');
  });

  it('refuses a call whose turn came after too long a wait, rather than hashing for someone who has gone', async () => {
    const inner = createHeldHasher();
    const hasher = limitConcurrentHashing(inner.hasher, { concurrency: 1, maxWaiting: 5, maxWaitMs: 50 });
    inner.hold();
    const first = hasher.hash('a');
    const late = hasher.hash('b');
    await new Promise((resolve) => setTimeout(resolve, 80));
    inner.release();
    expect(await first).toBe('fake:a');
    await expect(late).rejects.toBeInstanceOf(HashingBusyError);
    expect(inner.calls.map((call) => call.password)).toEqual(['a']);
    // Its place went on: the next call runs at once.
    expect(await hasher.hash('c')).toBe('fake:c');
  });

  it('drops a waiting call whose signal aborts (its client hung up), and gives its place to the next', async () => {
    const inner = createHeldHasher();
    const hasher = limitConcurrentHashing(inner.hasher, { concurrency: 1, maxWaiting: 1 });
    inner.hold();
    const running = new AbortController();
    const first = hasher.hash('a', { signal: running.signal });
    const waiting = new AbortController();
    const dropped = hasher.verify('fake:b', 'b', { signal: waiting.signal });
    waiting.abort();
    await expect(dropped).rejects.toBeInstanceOf(HashingAbandonedError);
    // Its place in the queue is free at once, and an abort once a call runs changes nothing.
    const next = hasher.hash('c');
    running.abort();
    inner.release();
    expect(await first).toBe('fake:a');
    expect(await next).toBe('fake:c');
    expect(inner.calls.map((call) => call.password)).toEqual(['a', 'c']);
    // A call whose client is already gone never queues.
    await expect(hasher.hash('d', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      HashingAbandonedError,
    );
    expect(inner.calls).toHaveLength(2);
  });

  it('frees the place of a hash that failed', async () => {
    const failing: PasswordHasher = {
      hash: async () => {
        throw new Error('out of memory');
      },
      verify: async () => false,
    };
    const hasher = limitConcurrentHashing(failing, { concurrency: 1, maxWaiting: 0 });
    await expect(hasher.hash('a')).rejects.toThrow('out of memory');
    expect(await hasher.verify('x', 'y')).toBe(false);
  });

  it('defaults to one hash per core beyond the event loop’s, within libuv’s pool, 50 waiting per hash', () => {
    expect(defaultHashingLimits({ cores: 1 })).toEqual({ concurrency: 1, maxWaiting: 50 });
    expect(defaultHashingLimits({ cores: 2 })).toEqual({ concurrency: 1, maxWaiting: 50 });
    expect(defaultHashingLimits({ cores: 4 })).toEqual({ concurrency: 3, maxWaiting: 150 });
    // libuv's 4 threads also read files and resolve names: one stays free for them.
    expect(defaultHashingLimits({ cores: 16 })).toEqual({ concurrency: 3, maxWaiting: 150 });
    expect(defaultHashingLimits({ cores: 16, threadPoolSize: 20 })).toEqual({
      concurrency: 15,
      maxWaiting: 750,
    });
  });

  it('queues the argon2id hasher itself, the decoy check for an unknown user included', async () => {
    const hasher = await createArgon2Hasher({ limits: { concurrency: 1, maxWaiting: 0 } });
    const [first, second] = await Promise.allSettled([
      hasher.hash('one long passphrase'),
      hasher.verify(null, 'another long passphrase'),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: expect.any(HashingBusyError) });
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
