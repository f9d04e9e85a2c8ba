import type { AuditEventType, AuditLog } from '../../audit/log.js';
import type { Clock } from '../../clock.js';
import type { SqlDatabase } from './database.js';

export function createSqlAuditLog({ db }: SqlDatabase, clock: Clock): AuditLog {
  return {
    async record(event) {
      await db
        .insertInto('audit_events')
        .values({
          at: clock.now().getTime(),
          type: event.type,
          user_id: event.userId ?? null,
          username: event.username ?? null,
          ip: event.ip ?? null,
          detail: event.detail ?? null,
        })
        .execute();
    },
    async recent(limit = 50) {
      const rows = await db
        .selectFrom('audit_events')
        .selectAll()
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map((row) => ({
        id: row.id,
        at: new Date(row.at),
        type: row.type as AuditEventType,
        userId: row.user_id,
        username: row.username,
        ip: row.ip,
        detail: row.detail,
      }));
    },
    async deleteOlderThan(cutoff, batchSize) {
      // Oldest first and a bounded batch, so one sweep never holds a write lock for long.
      const result = await db
        .deleteFrom('audit_events')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('audit_events')
            .select('id')
            .where('at', '<', cutoff.getTime())
            .orderBy('at')
            .orderBy('id')
            .limit(batchSize),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
