import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import { createAuditRetentionTask } from '../../src/audit/retention.js';
import { startHousekeeping } from '../../src/housekeeping.js';
import { createLogger } from '../../src/logger.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

// Every failed or throttled login writes an event: without a retention sweep the log, and the
// database with it, grows for ever.
describe('audit log retention', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let audit: AuditLog;

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock(new Date('2026-01-01T00:00:00Z'));
    audit = createSqlAuditLog(sql.database, clock);
  });
  afterEach(() => sql.close());

  const count = async () => (await sql.database.db.selectFrom('audit_events').select('id').execute()).length;

  it('deletes events older than the retention period, in batches, and keeps newer ones', async () => {
    for (let i = 0; i < 1_234; i += 1)
      await audit.record({ type: 'login_password_failed', username: `u${i}` });
    clock.advance(60 * 24 * 60 * 60_000);
    await audit.record({ type: 'login_succeeded', username: 'recent' });
    clock.advance(31 * 24 * 60 * 60_000); // 91 days after the first events, 31 after the recent one

    const task = createAuditRetentionTask({ audit, clock, retentionDays: 90 });
    const batches: number[] = [];
    const counting = {
      ...task,
      runBatch: async () => batches[batches.push(await task.runBatch()) - 1]!,
    };
    const housekeeping = startHousekeeping({
      tasks: [counting],
      intervalMs: 60_000,
      logger: createLogger('silent'),
    });
    await housekeeping.runOnce();
    housekeeping.stop();

    expect(await count()).toBe(1);
    expect((await audit.recent(5))[0]!.username).toBe('recent');
    expect(Math.max(...batches)).toBeLessThanOrEqual(task.batchSize);
    expect(batches.length).toBeGreaterThan(1);
  });

  it('keeps everything younger than the retention period', async () => {
    await audit.record({ type: 'login_password_failed', username: 'a' });
    clock.advance(89 * 24 * 60 * 60_000);
    const task = createAuditRetentionTask({ audit, clock, retentionDays: 90 });
    expect(await task.runBatch()).toBe(0);
    expect(await count()).toBe(1);
  });

  it('a failing task is logged and does not stop the others', async () => {
    const lines: string[] = [];
    const logger = createLogger('warn', { write: (line: string) => void lines.push(line) });
    let ran = false;
    const housekeeping = startHousekeeping({
      tasks: [
        {
          name: 'broken',
          batchSize: 10,
          runBatch: () => {
            throw new Error('database is locked');
          },
        },
        { name: 'fine', batchSize: 10, runBatch: () => ((ran = true), 0) },
      ],
      intervalMs: 60_000,
      logger,
    });
    await housekeeping.runOnce();
    housekeeping.stop();
    expect(ran).toBe(true);
    expect(lines.join('\n')).toMatch(/housekeeping failed/);
  });
});
