import type { Selectable } from 'kysely';
import {
  newToken,
  tokenDigest,
  type OneTimeToken,
  type OneTimeTokenStore,
  type TokenPurpose,
} from '../../account/one-time-tokens.js';
import type { Clock } from '../../clock.js';
import type { SqlDatabase } from './database.js';
import type { OneTimeTokensTable } from './schema.js';

function toToken(row: Selectable<OneTimeTokensTable>): OneTimeToken {
  return {
    purpose: row.purpose as TokenPurpose,
    userId: row.user_id,
    detail: row.detail,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
  };
}

/**
 * One-time links in the database (they must outlive a restart and be seen by every instance).
 * A link is no secret kept here: only its SHA-256.
 */
export function createSqlOneTimeTokenStore(database: SqlDatabase, clock: Clock): OneTimeTokenStore {
  const { db } = database;
  return {
    async issue({ purpose, userId, ttlMs, detail = null }) {
      const token = newToken();
      const now = clock.now().getTime();
      // One transaction: the old links are void the moment the new one exists, never both usable.
      await db.transaction().execute(async (trx) => {
        await trx
          .deleteFrom('one_time_tokens')
          .where('user_id', '=', userId)
          .where('purpose', '=', purpose)
          .execute();
        await trx
          .insertInto('one_time_tokens')
          .values({
            token_hash: tokenDigest(token),
            purpose,
            user_id: userId,
            detail,
            created_at: now,
            expires_at: now + ttlMs,
            used_at: null,
          })
          .execute();
      });
      return token;
    },
    async peek(purpose, token) {
      const row = await db
        .selectFrom('one_time_tokens')
        .selectAll()
        .where('token_hash', '=', tokenDigest(token))
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', clock.now().getTime())
        .executeTakeFirst();
      return row ? toToken(row) : null;
    },
    async consume(purpose, token) {
      const now = clock.now().getTime();
      // The conditions and the write are one statement: of two racing uses, one updates the row.
      // It waits for the disk: a used link must stay used after a power cut.
      const row = await database.durably(() =>
        db
          .updateTable('one_time_tokens')
          .set({ used_at: now })
          .where('token_hash', '=', tokenDigest(token))
          .where('purpose', '=', purpose)
          .where('used_at', 'is', null)
          .where('expires_at', '>', now)
          .returningAll()
          .executeTakeFirst(),
      );
      return row ? toToken(row) : null;
    },
    async voidAll(userId, purpose) {
      let query = db.deleteFrom('one_time_tokens').where('user_id', '=', userId);
      if (purpose) query = query.where('purpose', '=', purpose);
      await query.execute();
    },
    async deleteExpired(now, batchSize) {
      const result = await db
        .deleteFrom('one_time_tokens')
        .where('token_hash', 'in', (eb) =>
          eb
            .selectFrom('one_time_tokens')
            .select('token_hash')
            .where('expires_at', '<=', now.getTime())
            .orderBy('expires_at')
            .limit(batchSize),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
