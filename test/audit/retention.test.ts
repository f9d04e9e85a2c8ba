import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteAuditLog, type AuditLog } from '../../src/audit/log.js';
import { createAuditRetentionTask } from '../../src/audit/retention.js';
import { openDatabase, type Db } from '../../src/db/open.js';
import { startHousekeeping } from '../../src/housekeeping.js';
import { createLogger } from '../../src/logger.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';

// Every failed or throttled login writes an event: without a retention sweep the log, and the
// database with it, grows for ever.
describe('audit log retention', () => {
  let folder: string;
  let db: Db;
  let clock: TestClock;
  let audit: AuditLog;

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'audit-retention-'));
    db = openDatabase(join(folder, 'app.db'));
    clock = createTestClock(new Date('2026-01-01T00:00:00Z'));
    audit = createSqliteAuditLog(db, clock);
  });
  afterEach(() => {
    db.close();
    rmSync(folder, { recursive: true, force: true });
  });

  const count = () => (db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n;

  it('deletes events older than the retention period, in batches, and keeps newer ones', async () => {
    for (let i = 0; i < 1_234; i += 1) audit.record({ type: 'login_password_failed', username: `u${i}` });
    clock.advance(60 * 24 * 60 * 60_000);
    audit.record({ type: 'login_succeeded', username: 'recent' });
    clock.advance(31 * 24 * 60 * 60_000); // 91 days after the first events, 31 after the recent one

    const task = createAuditRetentionTask({ audit, clock, retentionDays: 90 });
    const batches: number[] = [];
    const counting = { ...task, runBatch: () => batches[batches.push(task.runBatch() as number) - 1]! };
    const housekeeping = startHousekeeping({
      tasks: [counting],
      intervalMs: 60_000,
      logger: createLogger('silent'),
    });
    await housekeeping.runOnce();
    housekeeping.stop();

    expect(count()).toBe(1);
    expect(audit.recent(5)[0]!.username).toBe('recent');
    expect(Math.max(...batches)).toBeLessThanOrEqual(task.batchSize);
    expect(batches.length).toBeGreaterThan(1);
  });

  it('keeps everything younger than the retention period', async () => {
    audit.record({ type: 'login_password_failed', username: 'a' });
    clock.advance(89 * 24 * 60 * 60_000);
    const task = createAuditRetentionTask({ audit, clock, retentionDays: 90 });
    expect(task.runBatch()).toBe(0);
    expect(count()).toBe(1);
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
