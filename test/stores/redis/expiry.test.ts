import type { SessionData } from 'express-session';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewChallenge } from '../../../src/mfa/challenge-store.js';
import { createRedisChallengeStore } from '../../../src/stores/redis/challenge-store.js';
import type { RedisClient } from '../../../src/stores/redis/client.js';
import { createRedisRateLimitStore } from '../../../src/stores/redis/rate-limit-store.js';
import { createRedisSessionStore, type RedisSessionStore } from '../../../src/stores/redis/session-store.js';
import { createRedisVoiceDocumentStore } from '../../../src/stores/redis/voice-document-store.js';
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
      const { window } = await limits.increment('login:ip:192.0.2.1', 60_000);
      await limits.increment('login:ip:192.0.2.1', 60_000);
      const key = `${keyPrefix}limit:login:ip:192.0.2.1`;
      const before = await msLeft(key);
      expect(before).toBeGreaterThan(59_000);
      expect(before).toBeLessThanOrEqual(60_000);
      await limits.decrement('login:ip:192.0.2.1', window);
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

  describe('sessions', () => {
    const MINUTE_MS = 60_000;
    const sessionFor = (lifetimeMs: number) =>
      ({
        cookie: { originalMaxAge: lifetimeMs, expires: new Date(clock.now().getTime() + lifetimeMs) },
        signedIn: { userId: 7 },
      }) as unknown as SessionData;
    const calls = (store: RedisSessionStore) => ({
      set: (sid: string, data: SessionData) =>
        new Promise<void>((resolve, reject) => store.set(sid, data, (e) => (e ? reject(e) : resolve()))),
      touch: (sid: string, data: SessionData) =>
        new Promise<void>((resolve, reject) => store.touch(sid, data, (e) => (e ? reject(e) : resolve()))),
      destroy: (sid: string) =>
        new Promise<void>((resolve, reject) => store.destroy(sid, (e) => (e ? reject(e) : resolve()))),
    });

    it('live as long as their cookie, counted from the app’s clock, and a touch sets it anew', async () => {
      const sessions = calls(createRedisSessionStore(redis, { keyPrefix, clock }));
      await sessions.set('sid', sessionFor(30 * MINUTE_MS));
      const key = `${keyPrefix}session:sid`;
      expect(await msLeft(key)).toBeGreaterThan(30 * MINUTE_MS - 5_000);
      expect(await msLeft(key)).toBeLessThanOrEqual(30 * MINUTE_MS);

      await sessions.touch('sid', sessionFor(12 * 60 * MINUTE_MS));
      expect(await msLeft(key)).toBeGreaterThan(12 * 60 * MINUTE_MS - 5_000);
    });

    it('leave a tombstone with no session data, kept until the session’s own expiry', async () => {
      const sessions = calls(createRedisSessionStore(redis, { keyPrefix, clock }));
      await sessions.set('long', sessionFor(120 * MINUTE_MS));
      await sessions.destroy('long');

      expect(await redis.exists(`${keyPrefix}session:long`)).toBe(0);
      expect(await redis.get(`${keyPrefix}session-ended:long`)).toBe('1');
      const left = await msLeft(`${keyPrefix}session-ended:long`);
      expect(left).toBeGreaterThan(120 * MINUTE_MS - 5_000);
      expect(left).toBeLessThanOrEqual(120 * MINUTE_MS);
    });

    it('keep a tombstone at least 30 minutes, however close the session was to its end', async () => {
      const sessions = calls(createRedisSessionStore(redis, { keyPrefix, clock }));
      await sessions.set('short', sessionFor(MINUTE_MS));
      await sessions.destroy('short');
      await sessions.destroy('never-saved');

      for (const sid of ['short', 'never-saved']) {
        const left = await msLeft(`${keyPrefix}session-ended:${sid}`);
        expect(left).toBeGreaterThan(30 * MINUTE_MS - 5_000);
        expect(left).toBeLessThanOrEqual(30 * MINUTE_MS);
      }
    });
  });

  describe('voice documents', () => {
    it('live until their code expires, counted from the app’s clock, as does the list of a code’s documents', async () => {
      const documents = createRedisVoiceDocumentStore(redis, { keyPrefix, clock });
      const id = await documents.put({
        xml: '<Response/>',
        codeId: 'code-1',
        expiresAt: new Date(clock.now().getTime() + CODE_TTL_MS),
      });

      for (const key of [`${keyPrefix}voice-document:${id}`, `${keyPrefix}voice-documents-of-code:code-1`]) {
        expect(await msLeft(key)).toBeGreaterThan(CODE_TTL_MS - 5_000);
        expect(await msLeft(key)).toBeLessThanOrEqual(CODE_TTL_MS);
      }
      await documents.take(id);
      expect(await redis.exists(`${keyPrefix}voice-document:${id}`)).toBe(0);
    });
  });
});
