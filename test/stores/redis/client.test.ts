import { afterEach, describe, expect, it } from 'vitest';
import { createRedisChallengeStore } from '../../../src/stores/redis/challenge-store.js';
import { createRedisClient, type RedisClient } from '../../../src/stores/redis/client.js';
import { createRedisRateLimitStore } from '../../../src/stores/redis/rate-limit-store.js';
import { StoreUnavailableError } from '../../../src/stores/errors.js';
import { createTestClock } from '../../helpers/clock.js';
import { deleteKeysWithPrefix, isRedisAvailable, randomKeyPrefix, sleep } from '../../helpers/redis.js';
import { TEST_REDIS_URL } from '../../helpers/services.js';
import { findClosedPort, startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';

/** What a request waiting on Redis may wait at most before it gets its 503 page. */
const PROMPTLY_MS = 2_000;

async function timed<T>(promise: Promise<T>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await promise;
    return { error: undefined, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

function expectStoreUnavailable(error: unknown) {
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect((error as StoreUnavailableError).status).toBe(503);
  expect((error as StoreUnavailableError).safeMessage).toMatch(/cannot reach its data right now/);
}

describe('the Redis client while Redis is away', () => {
  const clients: RedisClient[] = [];
  const proxies: TcpProxy[] = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    for (const proxy of proxies.splice(0)) await proxy.close();
    for (const client of clients.splice(0)) if (client.isOpen) client.destroy();
  });

  /** A client as the site makes one, connecting in the background as a server that starts without Redis would. */
  function startClient(url: string, options: { commandTimeoutMs?: number } = {}): RedisClient {
    const client = createRedisClient(url, { onError: () => undefined, ...options });
    clients.push(client);
    client.connect().catch(() => undefined);
    return client;
  }

  it('refuses at once, with the 503 error, when nothing listens where Redis should be', async () => {
    // Threat: every request hanging while commands queue up for a Redis that is not there.
    const client = startClient(`redis://127.0.0.1:${await findClosedPort()}`);
    const limits = createRedisRateLimitStore(client, {
      keyPrefix: randomKeyPrefix(),
      clock: createTestClock(),
    });
    const challenges = createRedisChallengeStore(client, {
      keyPrefix: randomKeyPrefix(),
      clock: createTestClock(),
    });

    await sleep(300); // a few reconnection attempts have failed by now
    const operations: Array<() => Promise<unknown>> = [
      () => limits.increment('k', 60_000),
      () => limits.get('k'),
      () => challenges.findOpen(1, 'login'),
      () => challenges.close('c', 'accepted'),
    ];
    for (const operation of operations) {
      const { error, ms } = await timed(operation());
      expectStoreUnavailable(error);
      expect(ms).toBeLessThan(PROMPTLY_MS);
    }
  });

  describe.skipIf(!isRedisAvailable())('with a real Redis behind a proxy', () => {
    async function connectThroughProxy(options: { commandTimeoutMs?: number } = {}) {
      const target = new URL(TEST_REDIS_URL);
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      proxies.push(proxy);
      const url = new URL(TEST_REDIS_URL);
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      const client = startClient(url.toString(), options);
      const keyPrefix = randomKeyPrefix();
      prefixes.push(keyPrefix);
      const limits = createRedisRateLimitStore(client, { keyPrefix, clock: createTestClock(), ...options });
      await eventually(() => limits.get('k'));
      return { proxy, client, limits };
    }

    afterEach(async () => {
      const cleaner = createRedisClient(TEST_REDIS_URL, { onError: () => undefined });
      await cleaner.connect();
      for (const prefix of prefixes.splice(0)) await deleteKeysWithPrefix(cleaner, prefix);
      cleaner.destroy();
    });

    it('fails fast while Redis is gone, then reconnects by itself when it comes back', async () => {
      const { proxy, client, limits } = await connectThroughProxy();
      expect((await limits.increment('k', 60_000)).count).toBe(1);

      await proxy.stop();
      await sleep(100);
      const { error, ms } = await timed(limits.increment('k', 60_000));
      expectStoreUnavailable(error);
      expect(ms).toBeLessThan(PROMPTLY_MS);

      await proxy.start();
      // The same client, never restarted: the site recovers on its own.
      const count = await eventually(() => limits.increment('k', 60_000));
      expect(count.count).toBe(2);
      expect(client.isReady).toBe(true);
    });

    it('gives up on a command Redis does not answer, and carries on once it answers again', async () => {
      const { proxy, limits } = await connectThroughProxy({ commandTimeoutMs: 300 });
      await limits.increment('k', 60_000);

      proxy.freeze();
      const { error, ms } = await timed(limits.increment('k', 60_000));
      expectStoreUnavailable(error);
      expect(ms).toBeLessThan(PROMPTLY_MS);

      proxy.thaw();
      // The increment that timed out still reached Redis once it answered again; replies stay in order.
      const next = await eventually(() => limits.increment('k', 60_000));
      expect(next.count).toBe(3);
      expect((await limits.get('k'))?.count).toBe(3);
    });
  });
});

/** Retries until the store answers (reconnection takes a moment), for at most five seconds. */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}
