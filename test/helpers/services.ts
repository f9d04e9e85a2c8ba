import { connect } from 'node:net';
import { createClient } from 'redis';
import { describeStoreUrl as describeUrl } from '../../src/stores/index.js';

/**
 * The services the store suites run against: PostgreSQL and Redis on this machine by default, or
 * wherever TEST_DATABASE_URL and TEST_REDIS_URL point. They are checked once per `vitest run`
 * (test/helpers/services-setup.ts); where one does not answer its suites skip with one line saying
 * how to enable them, and under REQUIRE_SERVICE_TESTS=1 (set by .ci/run) the run fails instead.
 */

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/** CI sets REQUIRE_SERVICE_TESTS=1: there a service that does not answer is a failure, never a skip. */
export const areServiceTestsRequired = process.env.REQUIRE_SERVICE_TESTS === '1' || process.env.CI === 'true';

export interface ServiceAvailability {
  redis: boolean;
  postgres: boolean;
}

const PROBE_TIMEOUT_MS = 2_000;

export async function isRedisAnswering(url = TEST_REDIS_URL): Promise<boolean> {
  const client = createClient({
    url,
    socket: { connectTimeout: PROBE_TIMEOUT_MS, reconnectStrategy: false },
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/**
 * Asks the server whether it speaks TLS (PostgreSQL's SSLRequest): any PostgreSQL answers with one
 * byte, 'S' or 'N', before authentication, so this needs no client library and no password.
 */
export function isPostgresAnswering(url = TEST_DATABASE_URL): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(url);
    host = parsed.hostname || '127.0.0.1';
    port = Number(parsed.port || 5432);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => {
      const sslRequest = Buffer.alloc(8);
      sslRequest.writeInt32BE(8, 0);
      sslRequest.writeInt32BE(80877103, 4);
      socket.write(sslRequest);
    });
    socket.once('data', (reply) => finish(reply.length >= 1 && (reply[0] === 0x53 || reply[0] === 0x4e)));
  });
}

export async function checkServices(): Promise<ServiceAvailability> {
  const [redis, postgres] = await Promise.all([isRedisAnswering(), isPostgresAnswering()]);
  return { redis, postgres };
}

/** Each missing service, with where it was looked for and how to get it answering. */
function missingServices(available: ServiceAvailability): Array<{ at: string; fix: string }> {
  const missing: Array<{ at: string; fix: string }> = [];
  if (!available.postgres) {
    missing.push({
      at: `PostgreSQL at ${describeUrl(TEST_DATABASE_URL)}`,
      fix: 'start PostgreSQL (trust auth for user postgres) or set TEST_DATABASE_URL',
    });
  }
  if (!available.redis) {
    missing.push({
      at: `Redis at ${describeUrl(TEST_REDIS_URL)}`,
      fix: 'start Redis (redis-server) or set TEST_REDIS_URL',
    });
  }
  return missing;
}

const describeMissing = (missing: Array<{ at: string; fix: string }>) =>
  `no answer from ${missing.map((m) => m.at).join(' or ')}; ${missing.map((m) => m.fix).join(', and ')}`;

/** One line for a run where some services are missing, or null when all answered. */
export function describeSkippedServices(available: ServiceAvailability): string | null {
  const missing = missingServices(available);
  if (missing.length === 0) return null;
  return `Service tests skipped: ${describeMissing(missing)} to run them.`;
}

export function describeRequiredServices(available: ServiceAvailability): string {
  return `Service tests are required here (REQUIRE_SERVICE_TESTS=1 or CI=true): ${describeMissing(missingServices(available))}.`;
}
