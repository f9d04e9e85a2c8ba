import type { Selectable } from 'kysely';
import type { ApiVerification, ApiVerificationStore } from '../../api/verification-store.js';
import type { Clock } from '../../clock.js';
import type { SqlDatabase } from './database.js';
import type { ApiVerificationsTable } from './schema.js';

function toApiVerification(row: Selectable<ApiVerificationsTable>): ApiVerification {
  return {
    id: row.id,
    keyId: row.key_id,
    label: row.label,
    phone: row.phone_e164,
    channel: row.channel,
    provider: row.provider,
    ...(row.handle === null ? {} : { handle: row.handle }),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    attempts: row.attempts,
    status: row.status,
    closedAt: row.closed_at,
    checkHeldUntil: row.checking_until,
  };
}

/**
 * The verification API's codes in SQLite or PostgreSQL. As with the site's challenges
 * (challenge-store.ts), each rule is one conditional UPDATE whose WHERE names the state it changes:
 * in PostgreSQL a racing UPDATE of the same row waits for the first and checks its WHERE again
 * against the row the first left; in SQLite writes are one at a time. So of two closes exactly one
 * changes the row, attempts never pass the cap, and one check at a time holds a verification.
 */
export function createSqlApiVerificationStore({ db }: SqlDatabase, clock: Clock): ApiVerificationStore {
  const now = () => clock.now().getTime();
  return {
    async create(verification) {
      await db
        .insertInto('api_verifications')
        .values({
          id: verification.id,
          key_id: verification.keyId,
          label: verification.label,
          phone_e164: verification.phone,
          channel: verification.channel,
          provider: verification.provider,
          handle: verification.handle ?? null,
          created_at: verification.createdAt,
          expires_at: verification.expiresAt,
          status: 'pending',
        })
        .execute();
      return { ...verification, attempts: 0, status: 'pending', closedAt: null, checkHeldUntil: null };
    },
    async find(keyId, id) {
      const row = await db
        .selectFrom('api_verifications')
        .selectAll()
        .where('id', '=', id)
        .where('key_id', '=', keyId)
        .executeTakeFirst();
      return row ? toApiVerification(row) : null;
    },
    async findNewestPending(keyId, label, phone) {
      const row = await db
        .selectFrom('api_verifications')
        .selectAll()
        .where('key_id', '=', keyId)
        .where('label', '=', label)
        .where('phone_e164', '=', phone)
        .where('status', '=', 'pending')
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? toApiVerification(row) : null;
    },
    async cancelOthers(keyId, label, phone, keepId) {
      const rows = await db
        .updateTable('api_verifications')
        .set({ status: 'canceled', closed_at: now(), checking_until: null })
        .where('key_id', '=', keyId)
        .where('label', '=', label)
        .where('phone_e164', '=', phone)
        .where('id', '<>', keepId)
        .where('status', '=', 'pending')
        .returningAll()
        .execute();
      return rows.map(toApiVerification);
    },
    async reserveAttempt(id, max, checkUntil) {
      const row = await db
        .updateTable('api_verifications')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), checking_until: checkUntil }))
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where('attempts', '<', max)
        .where((eb) => eb.or([eb('checking_until', 'is', null), eb('checking_until', '<=', now())]))
        .returning('attempts')
        .executeTakeFirst();
      return row ? row.attempts : null;
    },
    async releaseAttempt(id, checkUntil) {
      await db
        .updateTable('api_verifications')
        .set((eb) => ({ attempts: eb('attempts', '-', 1), checking_until: null }))
        .where('id', '=', id)
        .where('attempts', '>', 0)
        .where('checking_until', '=', checkUntil)
        .execute();
    },
    async endCheck(id, checkUntil) {
      await db
        .updateTable('api_verifications')
        .set({ checking_until: null })
        .where('id', '=', id)
        .where('checking_until', '=', checkUntil)
        .execute();
    },
    async close(id, status) {
      const result = await db
        .updateTable('api_verifications')
        .set({ status, closed_at: now(), checking_until: null })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
    async deleteExpired(before, batchSize) {
      const result = await db
        .deleteFrom('api_verifications')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('api_verifications')
            .select('id')
            .where('expires_at', '<', before.getTime())
            .orderBy('expires_at')
            .limit(batchSize),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
