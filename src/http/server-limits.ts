import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { clientKeyOf } from './client-address.js';

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
  /**
   * Connections open at once from one client (an IPv4 address, an IPv6 /64) that is not a trusted
   * proxy, so that one client cannot take the whole of maxConnections with slow headers.
   */
  maxConnectionsPerClient: number;
  /** How often Node checks the two timeouts above (its default, 30 s, would let them overrun). */
  connectionsCheckingIntervalMs: number;
}

export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 10_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const MAX_CONNECTIONS = 10_000;
export const MAX_CONNECTIONS_PER_CLIENT = 64;
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

export const SERVER_LIMITS: ServerLimits = {
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  headersTimeoutMs: HEADERS_TIMEOUT_MS,
  keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  maxConnections: MAX_CONNECTIONS,
  maxConnectionsPerClient: MAX_CONNECTIONS_PER_CLIENT,
  connectionsCheckingIntervalMs: CONNECTIONS_CHECKING_INTERVAL_MS,
};

/**
 * Closes a connection when its client already holds `max`. A trusted proxy's connections are not
 * counted: they carry many clients, and the proxy is where their own limits belong.
 */
function capConnectionsPerClient(server: Server, max: number, isTrustedProxy: (address: string) => boolean) {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    if (isTrustedProxy(address)) return;
    const key = clientKeyOf(address);
    const count = open.get(key) ?? 0;
    if (count >= max) {
      socket.destroy();
      return;
    }
    open.set(key, count + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });
}

/** The site's HTTP server (not yet listening), with the limits above. */
export function createHttpServer(
  app: RequestListener,
  limits: ServerLimits = SERVER_LIMITS,
  options: { isTrustedProxy?: (address: string) => boolean } = {},
): Server {
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
  capConnectionsPerClient(server, limits.maxConnectionsPerClient, options.isTrustedProxy ?? (() => false));
  return server;
}
