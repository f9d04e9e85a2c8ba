import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { createRedisClient, type RedisClient } from '../../src/stores/redis/client.js';
import { TEST_REDIS_URL } from './services.js';

/** Whether this run found Redis (asked once, in test/helpers/services-setup.ts). */
export const isRedisAvailable = (): boolean => inject('services').redis;

/** A client configured as the site configures it, connected to the test Redis. */
export async function connectTestRedis(url = TEST_REDIS_URL): Promise<RedisClient> {
  const client = createRedisClient(url, { onError: () => undefined });
  await client.connect();
  return client;
}

/** Each test writes under its own prefix, so tests never see each other's keys. */
export function randomKeyPrefix(): string {
  return `keyhole-test:${randomUUID()}:`;
}

/** Deletes every key under the prefix (SCAN, never KEYS, so a shared Redis is not blocked). */
export async function deleteKeysWithPrefix(client: RedisClient, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await client.del(keys);
  }
}

export async function countKeysWithPrefix(client: RedisClient, prefix: string): Promise<number> {
  let count = 0;
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) count += keys.length;
  return count;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A Redis store as two instances see it: one fresh key prefix, a store on each of two
 * connections, and a close that deletes the prefix's keys and both connections.
 */
export async function openRedisPair<T>(
  build: (client: RedisClient, keyPrefix: string) => T,
): Promise<{ store: T; peer: T; close(): Promise<void> }> {
  const keyPrefix = randomKeyPrefix();
  const [first, second] = await Promise.all([connectTestRedis(), connectTestRedis()]);
  return {
    store: build(first, keyPrefix),
    peer: build(second, keyPrefix),
    async close() {
      await deleteKeysWithPrefix(first, keyPrefix);
      first.destroy();
      second.destroy();
    },
  };
}

/** Redis counts lifetimes down by its own clock: real time has to pass (a little more, as timers round). */
export function elapseOnRedis(clock: { advance(ms: number): void }): (ms: number) => Promise<void> {
  return async (ms) => {
    await sleep(ms + 25);
    clock.advance(ms);
  };
}
