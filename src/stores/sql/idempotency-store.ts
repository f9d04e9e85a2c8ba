import type { IdempotencyStore } from '../../api/idempotency.js';
import type { Clock } from '../../clock.js';
import type { SqlDatabase } from './database.js';

/**
 * Idempotency-Keys in SQLite or PostgreSQL. A claim is one upsert: it inserts, or takes over a row
 * too old to count, and says which by returning a row or none. No read comes first, so of two
 * requests with one key at once exactly one claims it (PostgreSQL makes the second wait for the
 * first's row and checks the upsert's WHERE against it; SQLite writes one at a time).
 */
export function createSqlIdempotencyStore({ db }: SqlDatabase, clock: Clock): IdempotencyStore {
  const read = (keyId: number, idempotencyKey: string) =>
    db
      .selectFrom('api_idempotency')
      .select(['request_hash', 'response_status', 'response_body'])
      .where('key_id', '=', keyId)
      .where('idempotency_key', '=', idempotencyKey)
      .executeTakeFirst();

  return {
    async claim({ keyId, idempotencyKey, requestHash, now, replaceBefore, abandonedBefore }) {
      const claimedAt = now.getTime();
      // Twice at most: a row deleted by housekeeping between the upsert and the read is gone, and
      // the second upsert inserts.
      for (let tries = 0; tries < 2; tries += 1) {
        const claimed = await db
          .insertInto('api_idempotency')
          .values({
            key_id: keyId,
            idempotency_key: idempotencyKey,
            request_hash: requestHash,
            response_status: null,
            response_body: null,
            created_at: claimedAt,
            completed_at: null,
          })
          .onConflict((conflict) =>
            conflict
              .columns(['key_id', 'idempotency_key'])
              .doUpdateSet((eb) => ({
                request_hash: eb.ref('excluded.request_hash'),
                created_at: eb.ref('excluded.created_at'),
                response_status: null,
                response_body: null,
                completed_at: null,
              }))
              .where((eb) =>
                eb.or([
                  eb('api_idempotency.created_at', '<', replaceBefore.getTime()),
                  eb.and([
                    eb('api_idempotency.completed_at', 'is', null),
                    eb('api_idempotency.created_at', '<', abandonedBefore.getTime()),
                  ]),
                ]),
              ),
          )
          .returning('key_id')
          .executeTakeFirst();
        if (claimed) return { claimed: true, claimedAt };
        const row = await read(keyId, idempotencyKey);
        if (!row) continue;
        const response =
          row.response_status === null || row.response_body === null
            ? null
            : { status: row.response_status, body: row.response_body };
        return { claimed: false, existing: { requestHash: row.request_hash, response } };
      }
      throw new Error('an Idempotency-Key could be neither claimed nor read');
    },
    async complete(keyId, idempotencyKey, claimedAt, response) {
      await db
        .updateTable('api_idempotency')
        .set({
          response_status: response.status,
          response_body: response.body,
          completed_at: clock.now().getTime(),
        })
        .where('key_id', '=', keyId)
        .where('idempotency_key', '=', idempotencyKey)
        .where('created_at', '=', claimedAt)
        .where('completed_at', 'is', null)
        .execute();
    },
    async release(keyId, idempotencyKey, claimedAt) {
      await db
        .deleteFrom('api_idempotency')
        .where('key_id', '=', keyId)
        .where('idempotency_key', '=', idempotencyKey)
        .where('created_at', '=', claimedAt)
        .where('completed_at', 'is', null)
        .execute();
    },
    async deleteOlderThan(before, batchSize) {
      const result = await db
        .deleteFrom('api_idempotency')
        .where((eb) =>
          eb(
            eb.refTuple('key_id', 'idempotency_key'),
            'in',
            eb
              .selectFrom('api_idempotency')
              .select(['key_id', 'idempotency_key'])
              .where('created_at', '<', before.getTime())
              .orderBy('created_at')
              .limit(batchSize)
              .$asTuple('key_id', 'idempotency_key'),
          ),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
