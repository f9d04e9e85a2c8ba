import { sql, type Selectable } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Challenge, ChallengeStore, CloseReason } from '../../mfa/challenge-store.js';
import type { SqlDatabase } from './database.js';
import { prepareQuery } from './prepared-query.js';
import type { ChallengesTable } from './schema.js';

function toChallenge(row: Selectable<ChallengesTable>): Challenge {
  return {
    id: row.id,
    userId: row.user_id,
    scope: row.scope,
    phone: row.phone_e164,
    channel: row.channel,
    provider: row.provider,
    ...(row.handle === null ? {} : { handle: row.handle }),
    sentAt: row.sent_at,
    expiresAt: row.expires_at,
    wrongAttempts: row.wrong_attempts,
    closedAt: row.closed_at,
    closeReason: row.close_reason,
  };
}

/**
 * Challenges in SQLite or PostgreSQL. Each rule is one conditional UPDATE whose WHERE names the
 * state it changes (open, under the cap), with RETURNING where the caller needs the outcome. In
 * PostgreSQL a racing UPDATE of the same row waits for the first and then checks its WHERE again
 * against the row as the first left it; in SQLite writes are one at a time. Either way exactly one
 * of two racing closes changes the row, and attempts never pass the cap.
 */
export function createSqlChallengeStore({ db }: SqlDatabase, clock: Clock): ChallengeStore {
  // The code page and each code entered read and count on a challenge: built once (prepared-query.ts).
  const selectById = prepareQuery(db, ({ id }: { id: string }) =>
    db.selectFrom('challenges').selectAll().where('id', '=', id),
  );
  const takeAttempt = prepareQuery(db, ({ id, max }: { id: string; max: number }) =>
    db
      .updateTable('challenges')
      .set((eb) => ({ wrong_attempts: eb('wrong_attempts', '+', 1) }))
      .where('id', '=', id)
      .where('closed_at', 'is', null)
      .where('wrong_attempts', '<', max)
      .returning('wrong_attempts'),
  );
  // A wrong code that uses the code up closes it, and a guess that is not counted hands its
  // attempt back: built once too.
  const giveBackAttempt = prepareQuery(db, ({ id }: { id: string }) =>
    db
      .updateTable('challenges')
      .set((eb) => ({ wrong_attempts: eb('wrong_attempts', '-', 1) }))
      .where('id', '=', id)
      .where('wrong_attempts', '>', 0),
  );
  const closeOpen = prepareQuery(
    db,
    ({ id, closedAt, reason }: { id: string; closedAt: number; reason: CloseReason }) =>
      db
        .updateTable('challenges')
        .set({ closed_at: closedAt, close_reason: reason })
        .where('id', '=', id)
        .where('closed_at', 'is', null),
  );
  return {
    async create(challenge) {
      await db
        .insertInto('challenges')
        .values({
          id: challenge.id,
          user_id: challenge.userId,
          scope: challenge.scope,
          phone_e164: challenge.phone,
          channel: challenge.channel,
          provider: challenge.provider,
          handle: challenge.handle ?? null,
          sent_at: challenge.sentAt,
          expires_at: challenge.expiresAt,
          // One above the account's newest in the scope, so the last sent is found first (findOpen).
          seq: sql<number>`(SELECT COALESCE(MAX(seq), 0) + 1 FROM challenges
            WHERE user_id = ${challenge.userId} AND scope = ${challenge.scope})`,
        })
        .execute();
      return { ...challenge, wrongAttempts: 0, closedAt: null, closeReason: null };
    },
    async findById(id) {
      const row = await selectById.first({ id });
      return row ? toChallenge(row) : null;
    },
    async findOpen(userId, scope) {
      const row = await db
        .selectFrom('challenges')
        .selectAll()
        .where('user_id', '=', userId)
        .where('scope', '=', scope)
        .where('closed_at', 'is', null)
        .orderBy('sent_at', 'desc')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? toChallenge(row) : null;
    },
    async closeOthers(userId, scope, keepId, reason) {
      const rows = await db
        .updateTable('challenges')
        .set({ closed_at: clock.now().getTime(), close_reason: reason })
        .where('user_id', '=', userId)
        .where('scope', '=', scope)
        .where('id', '<>', keepId)
        .where('closed_at', 'is', null)
        .returningAll()
        .execute();
      return rows.map(toChallenge);
    },
    async reserveAttempt(id, max) {
      const row = await takeAttempt.first({ id, max });
      return row ? row.wrong_attempts : null;
    },
    async releaseAttempt(id) {
      await giveBackAttempt.run({ id });
    },
    async close(id, reason) {
      const result = await closeOpen.run({ id, closedAt: clock.now().getTime(), reason });
      return result.numAffectedRows === 1n;
    },
    async deleteExpired(before, batchSize) {
      const result = await db
        .deleteFrom('challenges')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('challenges')
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
