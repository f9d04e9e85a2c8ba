import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewChallenge } from '../../../src/mfa/challenge-store.js';
import { createRedisChallengeStore } from '../../../src/stores/redis/challenge-store.js';
import type { RedisClient } from '../../../src/stores/redis/client.js';
import { createRedisRateLimitStore } from '../../../src/stores/redis/rate-limit-store.js';
import { createTestClock, type TestClock } from '../../helpers/clock.js';
import {
  connectTestRedis,
  countKeysWithPrefix,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../../helpers/redis.js';

const DAY_MS = 24 * 60 * 60_000;
const CODE_TTL_MS = 5 * 60_000;

/**
 * What only Redis does: it deletes keys by itself when their time is up. Times are set as
 * durations from the app's clock, so they hold even when the app's clock and Redis's disagree.
 */
describe.skipIf(!isRedisAvailable())('Redis keys expire by themselves', () => {
  let redis: RedisClient;
  let keyPrefix: string;
  let clock: TestClock;

  beforeEach(async () => {
    redis = await connectTestRedis();
    keyPrefix = randomKeyPrefix();
    // Years away from Redis's own clock: nothing may depend on the two agreeing.
    clock = createTestClock(new Date('2031-03-01T08:00:00Z'));
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.destroy();
  });

  const msLeft = async (key: string) => Number(await redis.pTTL(key));

  describe('rate-limit counters', () => {
    it('carry their window as the key’s expiry, which taking one back never lengthens', async () => {
      const limits = createRedisRateLimitStore(redis, { keyPrefix, clock });
      await limits.increment('login:ip:192.0.2.1', 60_000);
      await limits.increment('login:ip:192.0.2.1', 60_000);
      const key = `${keyPrefix}limit:login:ip:192.0.2.1`;
      const before = await msLeft(key);
      expect(before).toBeGreaterThan(59_000);
      expect(before).toBeLessThanOrEqual(60_000);
      await limits.decrement('login:ip:192.0.2.1');
      expect(await msLeft(key)).toBeLessThanOrEqual(before);
    });

    it('keep one key per counter under the store’s prefix, and none once the window ends', async () => {
      const limits = createRedisRateLimitStore(redis, { keyPrefix, clock });
      await limits.increment('a', 200);
      await limits.increment('b', 200);
      expect(await countKeysWithPrefix(redis, keyPrefix)).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(await countKeysWithPrefix(redis, keyPrefix)).toBe(0);
    });
  });

  describe('challenges', () => {
    const newChallenge = (overrides: Partial<NewChallenge> = {}): NewChallenge => {
      const sentAt = clock.now().getTime();
      return {
        id: `c${Math.random().toString(36).slice(2)}`,
        userId: 7,
        scope: 'login',
        phone: '+12025550142',
        channel: 'sms',
        provider: 'console',
        sentAt,
        expiresAt: sentAt + CODE_TTL_MS,
        ...overrides,
      };
    };

    it('are kept a day after they expire, counted from the app’s clock, and closing does not change that', async () => {
      const challenges = createRedisChallengeStore(redis, { keyPrefix, clock });
      const sent = await challenges.create(newChallenge());
      const keptFor = CODE_TTL_MS + DAY_MS;
      const key = `${keyPrefix}challenge:${sent.id}`;
      const index = `${keyPrefix}challenges-open:7:login`;

      expect(await msLeft(key)).toBeGreaterThan(keptFor - 5_000);
      expect(await msLeft(key)).toBeLessThanOrEqual(keptFor);
      expect(await msLeft(index)).toBeGreaterThanOrEqual((await msLeft(key)) - 1_000);

      clock.advance(60_000);
      await challenges.reserveAttempt(sent.id, 5);
      await challenges.close(sent.id, 'accepted');
      expect(await msLeft(key)).toBeGreaterThan(keptFor - 5_000);
    });

    it('leave housekeeping nothing to do: Redis deletes them itself', async () => {
      const challenges = createRedisChallengeStore(redis, { keyPrefix, clock });
      const sent = await challenges.create(newChallenge());
      clock.advance(CODE_TTL_MS + 2 * DAY_MS);
      expect(await challenges.deleteExpired(clock.now(), 500)).toBe(0);
      expect(await challenges.findById(sent.id)).not.toBeNull();
    });

    it('drop from the open index a challenge whose key Redis already deleted', async () => {
      const challenges = createRedisChallengeStore(redis, { keyPrefix, clock });
      const older = await challenges.create(newChallenge());
      clock.advance(1_000);
      const newer = await challenges.create(newChallenge());
      const index = `${keyPrefix}challenges-open:7:login`;
      await redis.del(`${keyPrefix}challenge:${newer.id}`); // as its expiry would

      expect((await challenges.findOpen(7, 'login'))?.id).toBe(older.id);
      expect(await redis.zCard(index)).toBe(1);
      expect(await challenges.closeOthers(7, 'login', 'another-id', 'replaced')).toEqual([
        expect.objectContaining({ id: older.id, closeReason: 'replaced' }),
      ]);
      expect(await redis.zCard(index)).toBe(0);
    });
  });
});
