import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';

export const AUDIT_EVENT_TYPES = [
  'account_created',
  'login_password_failed',
  'login_throttled',
  'code_sent',
  'code_send_failed',
  'code_failed',
  'code_lockout',
  'login_succeeded',
  'admin_verified',
  'admin_denied',
  'admin_granted',
  'admin_revoked',
  'logout',
  // The toll-fraud guard (issue 8): refused, or in record mode flagged, sends and registrations.
  'code_send_refused',
  'code_send_flagged',
  'registration_refused',
  'registration_flagged',
  'sending_paused',
  'send_budget_spent',
  'code_entry_suspended',
  'code_entry_unlocked',
  'code_entry_unlocked',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditEvent {
  id: number;
  at: Date;
  type: AuditEventType;
  userId: number | null;
  username: string | null;
  ip: string | null;
  detail: string | null;
}

export interface AuditEventInput {
  type: AuditEventType;
  userId?: number | null;
  username?: string | null;
  ip?: string | null;
  /** Short, human text. Never a code, a password or a full phone number. */
  detail?: string | null;
}

export interface AuditLog {
  record(event: AuditEventInput): void;
  recent(limit?: number): AuditEvent[];
  /** Deletes up to `batchSize` of the oldest events from before `cutoff`; returns how many went. */
  deleteOlderThan(cutoff: Date, batchSize: number): number;
}

interface AuditRow {
  id: number;
  at: number;
  type: AuditEventType;
  user_id: number | null;
  username: string | null;
  ip: string | null;
  detail: string | null;
}

export function createSqliteAuditLog(db: Db, clock: Clock): AuditLog {
  const insert = db.prepare(
    'INSERT INTO audit_events (at, type, user_id, username, ip, detail) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const recent = db.prepare('SELECT * FROM audit_events ORDER BY at DESC, id DESC LIMIT ?');
  // Oldest first and a bounded batch, so one sweep never holds the write lock for long.
  const deleteOld = db.prepare(
    `DELETE FROM audit_events WHERE id IN (
       SELECT id FROM audit_events WHERE at < ? ORDER BY at, id LIMIT ?)`,
  );
  return {
    record(event) {
      insert.run(
        clock.now().getTime(),
        event.type,
        event.userId ?? null,
        event.username ?? null,
        event.ip ?? null,
        event.detail ?? null,
      );
    },
    recent(limit = 50) {
      return (recent.all(limit) as AuditRow[]).map((row) => ({
        id: row.id,
        at: new Date(row.at),
        type: row.type,
        userId: row.user_id,
        username: row.username,
        ip: row.ip,
        detail: row.detail,
      }));
    },
    deleteOlderThan(cutoff, batchSize) {
      return deleteOld.run(cutoff.getTime(), batchSize).changes;
    },
  };
}
