import type { AuditEvent, AuditEventType, AuditLog } from '../../audit/log.js';
import { sql, type Insertable, type Selectable } from 'kysely';
import type { Clock } from '../../clock.js';
import { MASKED_PHONE_MARK } from '../../users/phone.js';
import { usernameKeyOf } from '../../users/username.js';
import type { SqlDatabase } from './database.js';
import { isForeignKeyViolation } from './errors.js';
import { prepareQuery } from './prepared-query.js';
import type { AuditEventsTable } from './schema.js';

type AuditRow = Omit<Insertable<AuditEventsTable>, 'id'>;

function toEvent(row: Selectable<AuditEventsTable>): AuditEvent {
  return {
    id: row.id,
    at: new Date(row.at),
    type: row.type as AuditEventType,
    userId: row.user_id,
    username: row.username,
    ip: row.ip,
    detail: row.detail,
  };
}

/**
 * Events about rights and standing, rare and never to be lost: written durably, waiting for the
 * disk (the frequent ones, a wrong code or a send, do not; see RELAXED_DURABILITY_TABLES in
 * schema.ts). A grant written for good with its audit line lost to a
 * power cut would be a change nobody can account for.
 */
const DURABLE_EVENTS: ReadonlySet<AuditEventType> = new Set<AuditEventType>([
  'account_created',
  'admin_granted',
  'admin_revoked',
  'code_entry_suspended',
  'code_entry_unlocked',
  'account_unlocked',
  'account_sessions_ended',
  'account_disabled',
  'account_enabled',
  'sending_paused',
  'send_budget_spent',
  // What someone may later ask "who changed my account?" about.
  'password_changed',
  'password_reset',
  'phone_changed',
  'email_verified',
  'email_removed',
  'account_deleted',
  'factor_added',
]);

export function createSqlAuditLog({ db, durably }: SqlDatabase, clock: Clock): AuditLog {
  // Each wrong code, login and send writes one: built once (prepared-query.ts).
  const insert = prepareQuery(db, (row: AuditRow) =>
    db.insertInto('audit_events').values({
      at: row.at,
      type: row.type,
      user_id: row.user_id,
      username: row.username,
      username_key: row.username_key,
      ip: row.ip,
      detail: row.detail,
    }),
  );
  return {
    async record(event) {
      const row: AuditRow = {
        at: clock.now().getTime(),
        type: event.type,
        user_id: event.userId ?? null,
        username: event.username ?? null,
        username_key: event.username ? usernameKeyOf(event.username) : null,
        ip: event.ip ?? null,
        detail: event.detail ?? null,
      };
      const write = (values: AuditRow) =>
        DURABLE_EVENTS.has(event.type) ? durably(() => insert.run(values)) : insert.run(values);
      try {
        await write(row);
      } catch (error) {
        if (!isForeignKeyViolation(error)) throw error;
        // The account was deleted a moment ago (a request of it still in flight): the event is
        // kept, without the account and its name, which its deletion has just taken out of the log.
        await write({ ...row, user_id: null, username: null, username_key: null });
      }
    },
    async recent(limit = 50) {
      const rows = await db
        .selectFrom('audit_events')
        .selectAll()
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toEvent);
    },
    async forUser(userId, since, limit = 200) {
      const rows = await db
        .selectFrom('audit_events')
        .selectAll()
        .where('user_id', '=', userId)
        .where('at', '>=', since.getTime())
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toEvent);
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
    async pseudonymizeAccount({ userId, username }, pseudonym) {
      // The mark has no LIKE wildcard in it ('%' or '_'), so it matches only itself.
      const showsPhone = `%${MASKED_PHONE_MARK}%`;
      const result = await durably(() =>
        db
          .updateTable('audit_events')
          .set({
            username: pseudonym,
            username_key: usernameKeyOf(pseudonym),
            user_id: null,
            detail: sql<string | null>`CASE WHEN detail LIKE ${showsPhone} THEN NULL ELSE detail END`,
          })
          .where((eb) =>
            eb.or([
              eb('user_id', '=', userId),
              // Without an account id: a name typed at login, or an event whose account id the
              // deletion itself cleared (ON DELETE SET NULL). Another account's events have its id.
              eb.and([eb('user_id', 'is', null), eb('username_key', '=', usernameKeyOf(username))]),
            ]),
          )
          .executeTakeFirst(),
      );
      // The account as the actor of events about other accounts (an admin's help: "by rosa: ...",
      // "by rosa (2 sessions ended): ..."): its name in those details becomes the pseudonym too.
      for (const after of [':', ' (']) {
        const prefix = `by ${username}${after}`;
        await durably(() =>
          db
            .updateTable('audit_events')
            .set({
              detail: sql<string>`${`by ${pseudonym}${after}`} || substr(detail, ${prefix.length + 1})`,
            })
            .where(sql<boolean>`substr(detail, 1, ${prefix.length}) = ${prefix}`)
            .execute(),
        );
      }
      return Number(result.numUpdatedRows);
    },
  };
}
