import { createHash } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { StoreUnavailableError } from '../errors.js';

/**
 * How long a Redis command may take before the request gets the 503 page. Here rather than in
 * client.ts, so the stores do not load the Redis client library (client.ts) unless Redis is used.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

/**
 * What the Redis stores need from a client: one raw command at a time. Any node-redis client
 * fits (createRedisClient's, or one with other modules loaded), and so does a test double.
 */
export interface RedisCommands {
  sendCommand(args: ReadonlyArray<string>): Promise<unknown>;
}

/** What every Redis store is made with. */
export interface RedisStoreOptions {
  /** Every key the store writes starts with it, e.g. "keyhole:"; tests give each test its own. */
  keyPrefix: string;
  clock: Clock;
  /** How long a request waits for Redis before it gets the 503 page. */
  commandTimeoutMs?: number;
}

export type LuaScript = (
  redis: RedisCommands,
  keys: string[],
  args: Array<string | number>,
) => Promise<unknown>;

/**
 * A Lua script runs inside Redis as one step: no other client's command runs between its reads
 * and its writes, which is what makes "check, then write" safe across instances. It is sent by
 * its SHA-1 (EVALSHA), and in full only when Redis has not seen it yet (after a restart).
 */
export function defineLuaScript(source: string): LuaScript {
  const sha1 = createHash('sha1').update(source).digest('hex');
  return async (redis, keys, args) => {
    const rest = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await redis.sendCommand(['EVALSHA', sha1, ...rest]);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return redis.sendCommand(['EVAL', source, ...rest]);
    }
  };
}

/**
 * Runs one store operation: whatever goes wrong on the way to Redis becomes the one 503 error kind,
 * and so does an answer that does not come within `deadlineMs`. node-redis's own command timeout
 * stops at the moment a command is written, so a Redis that accepted the command and then stopped
 * answering would otherwise hold the request until the connection breaks, which can take minutes.
 * The abandoned command is left to finish (or fail) on its own; its reply keeps the order.
 */
export async function callRedis<T>(
  store: string,
  operation: () => Promise<T>,
  deadlineMs = REDIS_COMMAND_TIMEOUT_MS,
): Promise<T> {
  const pending = operation();
  pending.catch(() => undefined); // when the deadline wins, a late failure is nobody's business
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([pending, deadline]);
  } catch (error) {
    throw new StoreUnavailableError(store, error);
  } finally {
    clearTimeout(timer);
  }
}
