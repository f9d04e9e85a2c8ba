import type { SessionData } from 'express-session';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisChallengeStore } from '../../../src/stores/redis/challenge-store.js';
import { createRedisClient, type RedisClient } from '../../../src/stores/redis/client.js';
import type { RedisCommands } from '../../../src/stores/redis/commands.js';
import { createRedisProviderHealthStore } from '../../../src/stores/redis/provider-health-store.js';
import { createRedisRateLimitStore } from '../../../src/stores/redis/rate-limit-store.js';
import { createRedisSessionStore } from '../../../src/stores/redis/session-store.js';
import { createRedisTwilioVerificationLedger } from '../../../src/stores/redis/twilio-verification-ledger.js';
import { createRedisVoiceDocumentStore } from '../../../src/stores/redis/voice-document-store.js';
import { StoreUnavailableError } from '../../../src/stores/errors.js';
import { createTestClock } from '../../helpers/clock.js';
import { deleteKeysWithPrefix, isRedisAvailable, randomKeyPrefix, sleep } from '../../helpers/redis.js';
import { TEST_REDIS_URL } from '../../helpers/services.js';
import { findClosedPort, startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';
import { eventually } from '../../helpers/eventually.js';

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
      await eventually(() => limits.get('k'), { withinMs: 5_000, everyMs: 50 });
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
      const count = await eventually(() => limits.increment('k', 60_000), { withinMs: 5_000, everyMs: 50 });
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
      const next = await eventually(() => limits.increment('k', 60_000), { withinMs: 5_000, everyMs: 50 });
      expect(next.count).toBe(3);
      expect((await limits.get('k'))?.count).toBe(3);
    });
  });
});

describe('every Redis store, when Redis takes a command and never answers', () => {
  // Threat: a request held until the connection breaks (minutes) by a Redis that stopped answering.
  const silent: RedisCommands = { sendCommand: () => new Promise<never>(() => undefined) };
  const options = { keyPrefix: randomKeyPrefix(), clock: createTestClock(), commandTimeoutMs: 100 };

  /** express-session's callback methods, as a promise. */
  const viaCallback = <T>(call: (callback: (error: unknown, result?: T) => void) => void) =>
    new Promise<T | undefined>((resolve, reject) =>
      call((error, result) => (error ? reject(error) : resolve(result))),
    );

  it('gives up within its deadline with the 503 error, on every operation', async () => {
    const sessions = createRedisSessionStore(silent, options);
    const documents = createRedisVoiceDocumentStore(silent, options);
    const verifications = createRedisTwilioVerificationLedger(silent, options);
    const health = createRedisProviderHealthStore(silent, options);
    const session = { cookie: { originalMaxAge: 60_000 } } as SessionData;
    const operations: Array<() => Promise<unknown>> = [
      () => viaCallback((done) => sessions.get('sid', done)),
      () => viaCallback((done) => sessions.set('sid', session, done)),
      () => viaCallback((done) => sessions.destroy('sid', done)),
      () => viaCallback((done) => sessions.retireSession('sid', done)),
      () => documents.put({ xml: '<Response/>', codeId: 'c', expiresAt: new Date(Date.UTC(2100, 0)) }),
      () => documents.take('A'.repeat(43)),
      () => documents.dropForCode('c'),
      () => verifications.record({ sid: 'VE1', to: '+12025550142', scope: 'login', startedAt: 0 }),
      () => verifications.find('VE1'),
      () => verifications.pendingFor('+12025550142'),
      () => verifications.forget('VE1'),
      () => health.read(['twilio']),
      () => health.recordAnswer('twilio'),
      () => health.recordMisconfigured('twilio'),
      () => health.recordOutage('twilio', { threshold: 2, cooldownMs: 30_000 }),
    ];
    for (const operation of operations) {
      const { error, ms } = await timed(operation());
      expectStoreUnavailable(error);
      expect(ms).toBeLessThan(PROMPTLY_MS);
    }
  });

  it('skips the rolling refresh of a session rather than fail the page', async () => {
    const sessions = createRedisSessionStore(silent, options);
    const session = { cookie: { originalMaxAge: 60_000 } } as SessionData;
    await expect(
      viaCallback<void>((done) => sessions.touch('sid', session, (error) => done(error))),
    ).resolves.toBeUndefined();
  });
});
