import type { Clock } from '../clock.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { AuditLog } from './log.js';

const DAY_MS = 24 * 60 * 60_000;
const AUDIT_DELETE_BATCH_SIZE = 500;

/** Failed and throttled logins add events all day long: keep AUDIT_RETENTION_DAYS of them. */
export function createAuditRetentionTask(deps: {
  audit: AuditLog;
  clock: Clock;
  retentionDays: number;
}): HousekeepingTask {
  return {
    name: 'audit retention',
    batchSize: AUDIT_DELETE_BATCH_SIZE,
    runBatch() {
      const cutoff = new Date(deps.clock.now().getTime() - deps.retentionDays * DAY_MS);
      return deps.audit.deleteOlderThan(cutoff, AUDIT_DELETE_BATCH_SIZE);
    },
  };
}
