import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { ProviderPool } from '../mfa/providers/pool.js';
import type { StoreHealth } from '../stores/index.js';
import { isClientAddressTrustworthy } from './client-address.js';

export interface HealthCheckDeps {
  /** The database, and Redis when it is configured: the site serves pages only while all answer. */
  health: StoreHealth;
  providers: Pick<ProviderPool, 'status'>;
  /** Outside production anyone may see the details. */
  isProduction: boolean;
  /** HEALTHZ_TOKEN: in production, a monitor that sends it as a bearer token sees the details. */
  token?: string;
}

/** 127.0.0.0/8 and ::1, also in their IPv4-mapped IPv6 form. */
function isLoopbackAddress(ip: string | undefined): boolean {
  if (!ip) return false;
  const v4 = ip.startsWith('::ffff:') ? ip.slice('::ffff:'.length) : ip;
  return ip === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Compares digests, so neither the token's characters nor its length show in the time taken. */
function isSameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function bearerTokenOf(req: Request): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '');
  return match?.[1];
}

/**
 * GET /healthz for load balancers and monitors: 200 {"status":"ok"} while the database (and Redis,
 * when configured) answers, 503 {"status":"unavailable"} when one does not. Which providers are configured and failing
 * tells an attacker when to strike, so in production those details go only to a monitor that
 * presents HEALTHZ_TOKEN, or to a client on this machine (req.ip, after TRUST_PROXY, is loopback,
 * and not only because the forwarded address was junk).
 */
export function createHealthCheck(deps: HealthCheckDeps): RequestHandler {
  const maySeeDetails = (req: Request) => {
    // A junk forwarded address leaves req.ip at the connection's, the proxy's own: not a local client.
    if (!deps.isProduction || (isLoopbackAddress(req.ip) && isClientAddressTrustworthy(req))) return true;
    const given = bearerTokenOf(req);
    return deps.token !== undefined && given !== undefined && isSameSecret(given, deps.token);
  };

  return async (req, res) => {
    const [databaseUp, redisUp] = await Promise.all([deps.health.database(), deps.health.redis?.()]);
    const allUp = databaseUp && redisUp !== false;
    const status = allUp ? 'ok' : 'unavailable';
    res.status(allUp ? 200 : 503).set('Cache-Control', 'no-store');
    if (!maySeeDetails(req)) {
      res.json({ status });
      return;
    }
    // The breaker's state may live in Redis: when it cannot be read, say so rather than fail the check.
    const providers = await deps.providers.status().catch(() => 'unknown' as const);
    const upOrDown = (up: boolean) => (up ? 'up' : 'down');
    res.json({
      status,
      database: upOrDown(databaseUp),
      ...(redisUp === undefined ? {} : { redis: upOrDown(redisUp) }),
      providers,
    });
  };
}
