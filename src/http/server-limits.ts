import { createServer, type RequestListener, type Server } from 'node:http';

/**
 * What a slow or greedy client may hold on to. Without these, a client that sends its headers a
 * byte at a time (slowloris) or opens thousands of idle connections ties up the process.
 */
export interface ServerLimits {
  /** Time to receive a whole request, headers and body (not the time to answer it). */
  requestTimeoutMs: number;
  /** Time to receive the request's headers. */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open after a response. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; further ones are closed as they arrive. */
  maxConnections: number;
  /** How often Node checks the two timeouts above (its default, 30 s, would let them overrun). */
  connectionsCheckingIntervalMs: number;
}

export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 10_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const MAX_CONNECTIONS = 1000;
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

export const SERVER_LIMITS: ServerLimits = {
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  headersTimeoutMs: HEADERS_TIMEOUT_MS,
  keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  maxConnections: MAX_CONNECTIONS,
  connectionsCheckingIntervalMs: CONNECTIONS_CHECKING_INTERVAL_MS,
};

/** The site's HTTP server (not yet listening), with the limits above. */
export function createHttpServer(app: RequestListener, limits: ServerLimits = SERVER_LIMITS): Server {
  const server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
    },
    app,
  );
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = limits.headersTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  return server;
}
