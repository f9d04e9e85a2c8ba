import type { Express } from 'express';
import type { AuditLog } from '../../src/audit/log.js';
import type { Clock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import type { FraudConfig } from '../../src/fraud/config.js';
import { createFraudGuard, type FraudGuard } from '../../src/fraud/index.js';
import type { RateLimitStore } from '../../src/http/rate-limit.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { createCodeTexts, type CodeTexts } from '../../src/mfa/sms-text.js';
import { SITE_NAME } from '../../src/site.js';
import type { SqlDatabase } from '../../src/stores/sql/database.js';
import { createSqlSendingStore } from '../../src/stores/sql/sending-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createBrowser, csrfTokenIn, type Browser } from './agent.js';
import { RELAXED_FRAUD_ENV } from './create-test-app.js';

/** The guard's settings as the site reads them from these variables (the defaults otherwise). */
export function fraudConfigFrom(env: Record<string, string> = {}): FraudConfig {
  return loadConfig({ NODE_ENV: 'test', ...env }).fraud;
}

/** The relaxed limits most domain tests run with (see RELAXED_FRAUD_ENV). */
export const relaxedFraudConfig = () => fraudConfigFrom(RELAXED_FRAUD_ENV);

/** A logger whose JSON lines land in `lines`, for tests of what the operator is told. */
export function capturingLogger(lines: string[]): Logger {
  return createLogger('info', { write: (line: string) => void lines.push(line) });
}

/** The whole guard on a real database (a SQLite file in most tests), as app.ts builds it. */
export function buildFraudGuard(deps: {
  database: SqlDatabase;
  clock: Clock;
  limits: RateLimitStore;
  audit: AuditLog;
  config: FraudConfig;
  logger?: Logger;
}): FraudGuard {
  const users = createSqlUserStore(deps.database, deps.clock);
  return createFraudGuard({
    limits: deps.limits,
    clock: deps.clock,
    config: deps.config,
    audit: deps.audit,
    logger: deps.logger ?? createLogger('silent'),
    store: createSqlSendingStore(deps.database, deps.clock),
    accountsWithPhone: (phone) => users.countProvenByPhone(phone),
  });
}

/** The code texts of a site at https://keyhole.example. */
export const TEST_CODE_TEXTS: CodeTexts = createCodeTexts({
  siteName: SITE_NAME,
  publicHost: 'keyhole.example',
});

/**
 * A browser behind a trusted proxy that says it is `address` (X-Forwarded-For; the test app
 * trusts its loopback proxy), for the per-address limits.
 */
export function createBrowserAt(app: Express, address: string): Browser {
  const browser = createBrowser(app);
  const { agent } = browser;
  return {
    agent,
    cookie: browser.cookie,
    get: (path) => agent.get(path).set('X-Forwarded-For', address),
    async submit(pagePath, action, fields = {}) {
      const page = await agent.get(pagePath).set('X-Forwarded-For', address);
      return agent
        .post(action)
        .set('X-Forwarded-For', address)
        .type('form')
        .send({ ...fields, _csrf: csrfTokenIn(page.text) });
    },
  };
}

/** Fictional numbers: +1 202 555 0100-0199 (US) and Australia's drama range +61 2 5550 xxxx. */
export const usNumber = (n: number) => `+1202555${String(100 + (n % 100)).padStart(4, '0')}`;
export const australianNumber = (n: number) => `+6125550${String(n % 10_000).padStart(4, '0')}`;
