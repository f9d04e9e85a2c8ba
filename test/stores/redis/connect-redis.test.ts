import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../../src/stores/redis/client.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../../helpers/redis.js';

/**
 * The site's sessions on Redis use a small store of its own (src/stores/redis/session-store.ts),
 * not connect-redis, which cannot keep ended sessions ended. This pins down that the pair installed
 * (connect-redis 9, node-redis 5, on this Node) works with the client as the site configures it,
 * for as long as connect-redis stays a dependency.
 */
describe.skipIf(!isRedisAvailable())('connect-redis on the site’s Redis client', () => {
  let redis: RedisClient;
  let keyPrefix: string;
  beforeEach(async () => {
    redis = await connectTestRedis();
    keyPrefix = randomKeyPrefix();
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.destroy();
  });

  it('saves, reads back with a lifetime, and destroys a session', async () => {
    const sessions = new RedisStore({ client: redis, prefix: `${keyPrefix}sess:` });
    const session = {
      cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) },
    } as SessionData;

    await sessions.set('sid-1', session);
    expect(await sessions.get('sid-1')).toMatchObject({ cookie: { originalMaxAge: 60_000 } });
    const msLeft = await redis.pTTL(`${keyPrefix}sess:sid-1`);
    expect(msLeft).toBeGreaterThan(50_000);
    expect(msLeft).toBeLessThanOrEqual(60_000);

    await sessions.destroy('sid-1');
    expect(await sessions.get('sid-1')).toBeNull();
  });
});
