import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import {
  MINIMUM_REDIS_MAJOR_VERSION,
  checkRedisOnceItAnswers,
  createStores,
  redisVersionProblem,
} from '../../src/stores/index.js';
import type { SiteRedis } from '../../src/stores/redis/client.js';
import { createTestClock } from '../helpers/clock.js';
import { eventually } from '../helpers/eventually.js';
import { openTestSqliteDatabase } from '../helpers/sql.js';

/** What `INFO` starts with, for a given version. */
const serverInfo = (version: string) =>
  `# Server\r\nredis_version:${version}\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n` +
  `# Memory\r\nused_memory:1000000\r\nmaxmemory_policy:noeviction\r\n`;

describe('the Redis version a site accepts', () => {
  it('is 7 or later: the rate limits name each window by its exact expiry (PEXPIRETIME)', () => {
    expect(MINIMUM_REDIS_MAJOR_VERSION).toBe(7);
    expect(redisVersionProblem(serverInfo('7.0.15'))).toBeUndefined();
    expect(redisVersionProblem(serverInfo('7.4.2'))).toBeUndefined();
    expect(redisVersionProblem(serverInfo('8.0.0'))).toBeUndefined();
  });

  it('names the version found and the one needed when older', () => {
    expect(redisVersionProblem(serverInfo('6.2.14'))).toMatch(
      /REDIS_URL points at Redis 6\.2\.14; Keyhole needs Redis 7 or later/,
    );
    expect(redisVersionProblem(serverInfo('5.0.7'))).toMatch(/Redis 5\.0\.7/);
  });

  it('finds no problem when INFO does not say the version (a managed service may hide fields)', () => {
    expect(redisVersionProblem('# Server\r\nredis_mode:standalone\r\n')).toBeUndefined();
    expect(redisVersionProblem('')).toBeUndefined();
  });
});

/**
 * A stand-in Redis on loopback that answers PING, INFO (as the given version, or an error when
 * INFO is "renamed") and accepts anything else with +OK: enough for a client to connect and for
 * the site's start-up checks. Nothing else of Redis is needed to test them.
 */
async function startFakeRedis(options: { version: string | null; port?: number; unansweredInfos?: number }) {
  const sockets = new Set<Socket>();
  let unansweredInfos = options.unansweredInfos ?? 0;
  const reply = (command: string) => {
    if (command === 'PING') return '+PONG\r\n';
    if (command === 'INFO' && unansweredInfos > 0) {
      unansweredInfos -= 1;
      return '';
    }
    if (command === 'INFO') {
      if (options.version === null) return "-ERR unknown command 'INFO'\r\n";
      const text = serverInfo(options.version);
      return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
    }
    if (command === 'HELLO') return "-ERR unknown command 'HELLO'\r\n";
    return '+OK\r\n';
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      // Each command is an array of bulk strings: *N, then $len and the text for each.
      for (;;) {
        const parts = buffered.split('\r\n');
        const count = /^\*(\d+)$/.exec(parts[0] ?? '');
        if (!count) return;
        const lines = 1 + 2 * Number(count[1]);
        if (parts.length <= lines) return;
        const answer = reply(String(parts[2]).toUpperCase());
        if (answer !== '') socket.write(answer);
        buffered = parts.slice(lines).join('\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a site on a Redis it cannot run on', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function startSiteStores(port: number, logLines: string[], redisStartupWaitMs = 2_000) {
    const sqlite = await openTestSqliteDatabase();
    cleanups.push(() => sqlite.close());
    const stores = await createStores({
      config: {
        databasePath: sqlite.path,
        redisUrl: `redis://127.0.0.1:${port}`,
        redisKeyPrefix: 'keyhole:',
      },
      clock: createTestClock(),
      logger: createLogger('warn', { write: (line: string) => void logLines.push(line) }),
      codeHashKey: 'test-code-hash-key',
      database: sqlite.database,
      redisStartupWaitMs,
      lateRedisCheckIntervalMs: 50,
    });
    cleanups.push(() => stores.close());
    return stores;
  }
  const messages = (lines: string[]) => lines.map((line) => (JSON.parse(line) as { msg: string }).msg);

  it('refuses to start on a Redis older than 7, saying which it found', async () => {
    const fake = await startFakeRedis({ version: '6.2.14' });
    cleanups.push(fake.close);
    await expect(startSiteStores(fake.port, [])).rejects.toThrow(
      /REDIS_URL points at Redis 6\.2\.14; Keyhole needs Redis 7 or later/,
    );
  });

  it('starts on Redis 7 without a word about its version', async () => {
    const fake = await startFakeRedis({ version: '7.2.4' });
    cleanups.push(fake.close);
    const logLines: string[] = [];
    await startSiteStores(fake.port, logLines);
    expect(messages(logLines)).toEqual([]);
  });

  it('starts, and says so, when Redis will not tell its version', async () => {
    const fake = await startFakeRedis({ version: null });
    cleanups.push(fake.close);
    const logLines: string[] = [];
    await startSiteStores(fake.port, logLines);
    expect(messages(logLines)).toEqual([
      expect.stringMatching(/did not say its version or eviction policy.*Redis 7 or later/),
    ]);
  });

  it('checks again later when INFO got no answer at start, and names a Redis too old then', async () => {
    // Redis answered the connection but not INFO in time (busy, or a slow network at that moment).
    const fake = await startFakeRedis({ version: '6.2.6', unansweredInfos: 1 });
    cleanups.push(fake.close);
    const logLines: string[] = [];
    await startSiteStores(fake.port, logLines);
    await eventually(
      async () => {
        expect(messages(logLines)).toContainEqual(
          expect.stringMatching(/Redis 6\.2\.6; Keyhole needs Redis 7 or later.*503/),
        );
      },
      { withinMs: 10_000 },
    );
  }, 20_000);

  it('names a Redis too old in the log when it only answers after the site started', async () => {
    // A port nothing listens on yet: the site starts without Redis, as it may.
    const placeholder = await startFakeRedis({ version: '7.0.0' });
    const port = placeholder.port;
    await placeholder.close();
    const logLines: string[] = [];
    await startSiteStores(port, logLines, 100);
    expect(messages(logLines).some((line) => /does not answer yet/.test(line))).toBe(true);

    const fake = await startFakeRedis({ version: '6.0.9', port });
    cleanups.push(fake.close);
    await eventually(
      async () => {
        expect(messages(logLines)).toContainEqual(
          expect.stringMatching(/Redis 6\.0\.9; Keyhole needs Redis 7 or later.*503/),
        );
      },
      { withinMs: 10_000 },
    );
  }, 20_000);
});

describe('the later check of a Redis that did not answer at start', () => {
  /** A Redis client stand-in whose INFO never gets an answer, counting the times it was asked. */
  const silentRedis = () => {
    const asked = { count: 0 };
    const redis = {
      sendCommand: async () => {
        asked.count += 1;
        throw new Error('no answer in time');
      },
    } as unknown as SiteRedis;
    return { redis, asked };
  };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('asks again at its interval until stopped, and never after (close() stops it)', async () => {
    const { redis, asked } = silentRedis();
    const stop = checkRedisOnceItAnswers(redis, () => false, createLogger('silent'), 10);
    await eventually(async () => expect(asked.count).toBeGreaterThanOrEqual(3), { withinMs: 2_000 });
    stop();
    const askedWhenStopped = asked.count;
    await pause(100);
    expect(asked.count).toBe(askedWhenStopped);
  });
});
