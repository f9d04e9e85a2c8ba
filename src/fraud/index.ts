import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { RateLimitStore } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { FraudConfig } from './config.js';
import { createRegistrationGuard, type RegistrationGuard } from './registration-guard.js';
import { createSendGuard, type SendGuard } from './send-guard.js';
import { createSendingStats, type SendingStats } from './stats.js';
import type { SendingStore } from './store.js';

/** The toll-fraud guard's three faces, built together so they share one store and one breaker. */
export interface FraudGuard {
  sends: SendGuard;
  registrations: RegistrationGuard;
  stats: SendingStats;
}

export function createFraudGuard(deps: {
  limits: RateLimitStore;
  clock: Clock;
  config: FraudConfig;
  audit: AuditLog;
  logger: Logger;
  store: SendingStore;
  accountsWithPhone(phone: string): Promise<number>;
}): FraudGuard {
  const sends = createSendGuard(deps);
  return {
    sends,
    registrations: createRegistrationGuard(deps),
    stats: createSendingStats({ ...deps, breaker: sends.breaker }),
  };
}
