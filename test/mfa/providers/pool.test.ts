import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/clock.js';
import { ProviderError } from '../../../src/mfa/provider.js';
import type { Channel, MfaProvider, ProviderErrorKind } from '../../../src/mfa/provider.js';
import { createProviderPool } from '../../../src/mfa/providers/pool.js';
import {
  createMemoryProviderHealthStore,
  type ProviderHealthStore,
} from '../../../src/mfa/providers/provider-health.js';
import { StoreUnavailableError } from '../../../src/stores/errors.js';
import type { RedisClient } from '../../../src/stores/redis/client.js';
import { createRedisProviderHealthStore } from '../../../src/stores/redis/provider-health-store.js';
import { createTestClock } from '../../helpers/clock.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../../helpers/redis.js';

const ALICE = '+12025550142';
const SMS = { to: ALICE, channel: 'sms' as const, scope: 'login' as const };

/** A scripted provider: answers, or fails with the kind it is told to. */
function scripted(name: string, channels: Channel[] = ['sms', 'voice']) {
  let failure: ProviderErrorKind | null = null;
  const sends: string[] = [];
  const verifies: (string | undefined)[] = [];
  const provider: MfaProvider & {
    failWith(kind: ProviderErrorKind | null): void;
    sends: string[];
    verifies: (string | undefined)[];
  } = {
    name,
    channels,
    sends,
    verifies,
    failWith(kind) {
      failure = kind;
    },
    async send({ channel }) {
      sends.push(channel);
      if (failure) throw new ProviderError(failure, name, 'scripted failure');
      return { handle: `${name}-${sends.length}` };
    },
    async verify({ handle }) {
      verifies.push(handle);
      if (failure) throw new ProviderError(failure, name, 'scripted failure');
      return 'valid';
    },
  };
  return provider;
}

function setUp(options: { cooldownMs?: number; failureThreshold?: number } = {}) {
  const clock = createTestClock();
  const first = scripted('first');
  const second = scripted('second');
  const pool = createProviderPool([first, second], { clock, cooldownMs: 30_000, ...options });
  const states = async () => (await pool.status()).map((status) => `${status.name}:${status.state}`);
  return { clock, first, second, pool, states };
}

describe('provider pool', () => {
  it('sends through the first provider while it answers, and reports every provider up', async () => {
    const { pool, first, second, states } = setUp();

    expect(await pool.send(SMS)).toEqual({ provider: 'first', handle: 'first-1' });
    expect(second.sends).toEqual([]);
    expect(await states()).toEqual(['first:up', 'second:up']);
    expect((await pool.status())[0]).toEqual({ name: 'first', channels: ['sms', 'voice'], state: 'up' });
  });

  it('says a failed send may have been delivered when any provider tried may have delivered it', async () => {
    // Threat: a timeout at the first provider (the code may be on the phone), then a refusal at the
    // second (nothing sent), read as "nothing went out" would hand every limit back: free messages.
    const { clock, second } = setUp();
    const timedOut: MfaProvider = {
      name: 'slow',
      channels: ['sms'],
      send: async () => {
        throw new ProviderError('unavailable', 'slow', 'timed out', { delivered: 'maybe' });
      },
      verify: async () => 'invalid',
    };
    second.failWith('unavailable');
    const pool = createProviderPool([timedOut, second], { clock, cooldownMs: 30_000 });
    const failure = await pool.send(SMS).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ProviderError);
    expect(failure).toMatchObject({ provider: 'second', kind: 'unavailable', delivered: 'maybe' });
    expect(second.sends).toEqual(['sms']);
  });

  it('tries the next provider when the first is unavailable, and verifies with the one that sent', async () => {
    const { pool, first, second, states } = setUp();
    first.failWith('unavailable');

    const sent = await pool.send(SMS);
    expect(sent).toEqual({ provider: 'second', handle: 'second-1' });
    expect(await states()).toEqual(['first:failing', 'second:up']);

    first.failWith(null);
    expect(
      await pool.verify(sent.provider, { ...SMS, code: '123456', handle: sent.handle, maxAgeMinutes: 5 }),
    ).toBe('valid');
    expect(second.verifies).toEqual(['second-1']);
    expect(first.verifies).toEqual([]);
  });

  it.each<ProviderErrorKind>(['invalid_number', 'rate_limited', 'auth'])(
    'does not fail over on %s: the next provider would give the same answer',
    async (kind) => {
      const { pool, first, second } = setUp();
      first.failWith(kind);

      await expect(pool.send(SMS)).rejects.toMatchObject({ kind, provider: 'first' });
      expect(second.sends).toEqual([]);
    },
  );

  it('never sends a verification elsewhere when the provider that sent the code is down', async () => {
    const { pool, first, second } = setUp();
    const sent = await pool.send(SMS);
    first.failWith('unavailable');

    await expect(
      pool.verify(sent.provider, { ...SMS, code: '123456', handle: sent.handle, maxAgeMinutes: 5 }),
    ).rejects.toMatchObject({ kind: 'unavailable', provider: 'first' });
    expect(second.verifies).toEqual([]);
  });

  it('skips a provider that keeps failing for the cooldown, then tries it again by itself', async () => {
    const { pool, first, second, clock, states } = setUp();
    first.failWith('unavailable');
    await pool.send(SMS);
    await pool.send(SMS);
    expect(first.sends).toHaveLength(2);
    expect(await states()).toEqual(['first:skipped', 'second:up']);

    // While skipped, codes go straight to the second provider.
    await pool.send(SMS);
    expect(first.sends).toHaveLength(2);
    expect(second.sends).toHaveLength(3);

    // After the cooldown it is tried again; it answers, so it is up and used again.
    clock.advance(30_000);
    expect(await states()).toEqual(['first:failing', 'second:up']);
    first.failWith(null);
    expect((await pool.send(SMS)).provider).toBe('first');
    expect(await states()).toEqual(['first:up', 'second:up']);
  });

  it('skips a provider again after a single outage when its retry after the cooldown fails', async () => {
    const { pool, first, clock, states } = setUp();
    first.failWith('unavailable');
    await pool.send(SMS);
    await pool.send(SMS);
    clock.advance(30_000);

    await pool.send(SMS);
    expect(first.sends).toHaveLength(3);
    expect(await states()).toEqual(['first:skipped', 'second:up']);
  });

  it('tries the first provider anyway when every provider is being skipped', async () => {
    const { pool, first, second, states } = setUp({ failureThreshold: 1 });
    first.failWith('unavailable');
    second.failWith('unavailable');
    await expect(pool.send(SMS)).rejects.toMatchObject({ kind: 'unavailable', provider: 'second' });
    expect(await states()).toEqual(['first:skipped', 'second:skipped']);

    first.failWith(null);
    expect((await pool.send(SMS)).provider).toBe('first');
    expect(second.sends).toHaveLength(1);
  });

  it('reports a provider that refuses our credentials as failing, without failing over', async () => {
    const { pool, first, second, states } = setUp();
    first.failWith('auth');
    await expect(pool.send(SMS)).rejects.toMatchObject({ kind: 'auth' });
    expect(second.sends).toEqual([]);
    expect(await states()).toEqual(['first:failing', 'second:up']);

    first.failWith(null);
    await pool.send(SMS);
    expect(await states()).toEqual(['first:up', 'second:up']);
  });

  it('sends each channel only through providers that deliver it', async () => {
    const clock = createTestClock();
    const smsOnly = scripted('sms-only', ['sms']);
    const both = scripted('both');
    const pool = createProviderPool([smsOnly, both], { clock });

    expect(pool.channels()).toEqual(['sms', 'voice']);
    expect((await pool.send({ ...SMS, channel: 'voice' })).provider).toBe('both');
    expect(smsOnly.sends).toEqual([]);
    expect((await pool.send(SMS)).provider).toBe('sms-only');
  });

  it('refuses a channel no provider delivers', async () => {
    const pool = createProviderPool([scripted('sms-only', ['sms'])], { clock: createTestClock() });

    expect(pool.channels()).toEqual(['sms']);
    await expect(pool.send({ ...SMS, channel: 'voice' })).rejects.toBeInstanceOf(ProviderError);
  });

  describe('when the breaker’s store does not answer (a Redis that is away)', () => {
    const unreachable = () => Promise.reject(new StoreUnavailableError('provider health', new Error('gone')));

    it('sends nothing and fails with the 503 error when it cannot tell which providers are skipped', async () => {
      const first = scripted('first');
      const pool = createProviderPool([first], {
        clock: createTestClock(),
        health: { ...createMemoryProviderHealthStore(createTestClock()), read: unreachable },
      });

      await expect(pool.send(SMS)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(first.sends).toEqual([]);
    });

    it('keeps a delivered code and an accepted check when only recording the outcome fails', async () => {
      // The code is on its way (or Twilio has accepted it): a 503 now would lose it for nothing.
      const first = scripted('first');
      const pool = createProviderPool([first], {
        clock: createTestClock(),
        health: {
          ...createMemoryProviderHealthStore(createTestClock()),
          recordAnswer: unreachable,
          recordOutage: unreachable,
          recordMisconfigured: unreachable,
        },
      });

      const sent = await pool.send(SMS);
      expect(sent).toEqual({ provider: 'first', handle: 'first-1' });
      expect(
        await pool.verify('first', { ...SMS, code: '123456', handle: sent.handle, maxAgeMinutes: 5 }),
      ).toBe('valid');
      first.failWith('unavailable');
      await expect(pool.send(SMS)).rejects.toMatchObject({ kind: 'unavailable', provider: 'first' });
    });
  });

  it('refuses to verify with a provider that is not configured', async () => {
    const { pool } = setUp();

    await expect(
      pool.verify('gone', { ...SMS, code: '123456', handle: 'x', maxAgeMinutes: 5 }),
    ).rejects.toMatchObject({ kind: 'unavailable' });
  });
});

/**
 * Two instances of the site: each has its own pool and its own provider objects, and they share
 * the breaker's state. Threat: every instance paying for the same outage (each login waiting on a
 * provider that is down) because only the instance that saw it skips it.
 */
function describeTwoInstances(
  backend: string,
  openStores: () => Promise<{ a: ProviderHealthStore; b: ProviderHealthStore; close(): Promise<void> }>,
  options: { skip?: boolean } = {},
) {
  describe.skipIf(options.skip ?? false)(`two pools sharing the breaker’s state (${backend})`, () => {
    let stores: Awaited<ReturnType<typeof openStores>>;
    beforeEach(async () => {
      stores = await openStores();
    });
    afterEach(() => stores.close());

    function instance(health: ProviderHealthStore, clock: Clock) {
      const first = scripted('first');
      const second = scripted('second');
      const pool = createProviderPool([first, second], { clock, cooldownMs: 30_000, health });
      const states = async () => (await pool.status()).map((status) => `${status.name}:${status.state}`);
      return { first, second, pool, states };
    }

    it('skips on B a provider that A’s breaker skipped, and brings it back on A once B sees it answer', async () => {
      const clock = createTestClock();
      const a = instance(stores.a, clock);
      const b = instance(stores.b, clock);
      a.first.failWith('unavailable');
      await a.pool.send(SMS);
      await a.pool.send(SMS);

      expect(await b.states()).toEqual(['first:skipped', 'second:up']);
      expect((await b.pool.send(SMS)).provider).toBe('second');
      expect(b.first.sends).toEqual([]);

      // B's code for an earlier challenge is checked by first, which answers: every instance uses it again.
      await b.pool.verify('first', { ...SMS, code: '123456', handle: 'first-0', maxAgeMinutes: 5 });
      expect(await a.states()).toEqual(['first:up', 'second:up']);
    });

    it('counts outages seen by A and by B together', async () => {
      const clock = createTestClock();
      const a = instance(stores.a, clock);
      const b = instance(stores.b, clock);
      a.first.failWith('unavailable');
      b.first.failWith('unavailable');
      await a.pool.send(SMS);
      await b.pool.send(SMS);

      expect(await a.states()).toEqual(['first:skipped', 'second:up']);
    });
  });
}

describeTwoInstances('memory', async () => {
  const shared = createMemoryProviderHealthStore(createTestClock());
  return { a: shared, b: shared, close: async () => undefined };
});

describeTwoInstances(
  'redis',
  async () => {
    const keyPrefix = randomKeyPrefix();
    const clients: RedisClient[] = await Promise.all([connectTestRedis(), connectTestRedis()]);
    const clock = createTestClock();
    const [a, b] = clients.map((client) => createRedisProviderHealthStore(client, { keyPrefix, clock }));
    return {
      a: a!,
      b: b!,
      async close() {
        await deleteKeysWithPrefix(clients[0]!, keyPrefix);
        for (const client of clients) client.destroy();
      },
    };
  },
  { skip: !isRedisAvailable() },
);
