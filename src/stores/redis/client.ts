import { ErrorReply, createClient } from 'redis';
import { REDIS_COMMAND_TIMEOUT_MS } from './commands.js';

/**
 * The one place a Redis connection is configured, for every Redis store.
 *
 * While Redis is away a request must get the 503 page at once, not wait in a queue that empties
 * only when Redis returns (node-redis's default), so:
 * - commands sent while the client is not connected are rejected at once (no offline queue);
 * - a command that cannot be written within `commandTimeoutMs` fails. node-redis stops that timer
 *   once the command is written, so the stores also give up on an answer that does not come in
 *   that time (callRedis in commands.ts); anything else sharing this client would need
 *   the same deadline around its calls;
 * - the client reconnects by itself, backing off up to RECONNECT_MAX_DELAY_MS, and never gives up,
 *   so the site recovers without a restart when Redis comes back.
 *
 * `connect()` resolves only once Redis has answered. A process that should start (and serve 503
 * pages) while Redis is down calls it without awaiting it; every failed attempt is reported to
 * `onError`, which must be given: node-redis throws an 'error' event that nobody listens to.
 */
export interface RedisClientOptions {
  onError: (error: Error) => void;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export { REDIS_COMMAND_TIMEOUT_MS };
const REDIS_CONNECT_TIMEOUT_MS = 2_000;
const RECONNECT_MAX_DELAY_MS = 2_000;
/** More commands than this waiting at once means Redis is not keeping up: refuse, do not pile up. */
const COMMAND_QUEUE_MAX_LENGTH = 10_000;

export function createRedisClient(url: string, options: RedisClientOptions) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandsQueueMaxLength: COMMAND_QUEUE_MAX_LENGTH,
    commandOptions: { timeout: options.commandTimeoutMs ?? REDIS_COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS,
      // Jitter keeps several instances from reconnecting in lockstep after Redis restarts.
      reconnectStrategy: (retries) =>
        Math.min(50 * 2 ** retries, RECONNECT_MAX_DELAY_MS) + Math.floor(Math.random() * 100),
    },
  });
  client.on('error', options.onError);
  return client;
}

export type RedisClient = ReturnType<typeof createRedisClient>;

/** An error Redis itself answered (unknown command, ACL denied), not a missing or late answer. */
export const isErrorReply = (error: unknown): boolean => error instanceof ErrorReply;

/**
 * After this many commands in a row got no answer within their deadline, the connection is taken
 * for dead and replaced. A Redis host that vanished without closing its connections (a failover, a
 * network partition) leaves the client "ready" on a socket that never answers; the kernel would
 * notice only after many minutes, and every request would wait out its deadline until then.
 */
export const REDIS_UNANSWERED_BEFORE_RECONNECT = 3;

/** The site's Redis: a client that replaces its connection when it stops answering (see above). */
export interface SiteRedis {
  sendCommand(args: ReadonlyArray<string>): Promise<unknown>;
  /** Resolves once Redis answered (see createRedisClient); rejects when the first connection fails. */
  connect(): Promise<void>;
  destroy(): void;
  /** How many times the connection was replaced, for tests and the log. */
  readonly replacements: number;
}

const UNANSWERED = Symbol('no answer in time');

export function createSiteRedis(
  url: string,
  options: RedisClientOptions & { onReplaced?: () => void; unansweredBeforeReconnect?: number },
): SiteRedis {
  const commandTimeoutMs = options.commandTimeoutMs ?? REDIS_COMMAND_TIMEOUT_MS;
  const limit = options.unansweredBeforeReconnect ?? REDIS_UNANSWERED_BEFORE_RECONNECT;
  let client = createRedisClient(url, options);
  let unansweredInARow = 0;
  let replacements = 0;
  let destroyed = false;

  const replace = (dead: RedisClient) => {
    if (dead !== client || destroyed) return;
    unansweredInARow = 0;
    replacements += 1;
    client = createRedisClient(url, options);
    // The old one's pending commands fail at once (they have already missed their deadline).
    dead.destroy();
    client.connect().catch(() => undefined); // it keeps retrying by itself; errors go to onError
    options.onReplaced?.();
  };

  return {
    async sendCommand(args) {
      const used = client;
      const pending = used.sendCommand(args);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<typeof UNANSWERED>((resolve) => {
        timer = setTimeout(() => resolve(UNANSWERED), commandTimeoutMs);
      });
      try {
        const first = await Promise.race([pending, deadline]);
        if (first === UNANSWERED) {
          pending.catch(() => undefined);
          unansweredInARow += 1;
          if (unansweredInARow >= limit) replace(used);
          throw new Error(`no answer within ${commandTimeoutMs} ms`);
        }
        unansweredInARow = 0;
        return first;
      } finally {
        clearTimeout(timer);
      }
    },
    async connect() {
      await client.connect();
    },
    destroy() {
      destroyed = true;
      if (client.isOpen) client.destroy();
    },
    get replacements() {
      return replacements;
    },
  };
}
