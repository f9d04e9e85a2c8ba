import type { Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import type { RecoveryCodeStore } from '../../factors/recovery-code-store.js';
import type { SqlDatabase } from './database.js';
import { prepareQuery } from './prepared-query.js';
import type { Schema } from './schema.js';

/** Recovery codes in the database (015's recovery_codes): one row per code, its HMAC only. */
export function createSqlRecoveryCodeStore(database: SqlDatabase, clock: Clock): RecoveryCodeStore {
  const { db } = database;
  /**
   * Two sets made at once on PostgreSQL: without this lock each transaction's delete (or check)
   * would miss the rows the other is inserting, and both sets would stay. The second now waits for
   * the first, then sees its rows. SQLite runs one writing transaction at a time.
   */
  const lockAccount = async (trx: Transaction<Schema>, userId: number) => {
    if (database.dialect !== 'postgres') return;
    await trx.selectFrom('users').select('id').where('id', '=', userId).forUpdate().execute();
  };
  const insert = async (trx: Transaction<Schema>, userId: number, digests: string[]) => {
    if (digests.length === 0) return;
    const now = clock.now().getTime();
    await trx
      .insertInto('recovery_codes')
      .values(digests.map((code_hmac) => ({ user_id: userId, code_hmac, created_at: now, used_at: null })))
      .execute();
  };
  // The code page counts them on every view ("Try another way"): built once (prepared-query.ts).
  const unusedOf = prepareQuery(db, ({ userId }: { userId: number }) =>
    db
      .selectFrom('recovery_codes')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null),
  );
  // The account page shows it on every view: built once (prepared-query.ts).
  const summaryOf = prepareQuery(db, ({ userId }: { userId: number }) =>
    db
      .selectFrom('recovery_codes')
      .select((eb) => [
        eb.fn.countAll<number | string>().as('total'),
        eb.fn.count<number | string>('used_at').as('used'),
        eb.fn.max<number | string | null>('created_at').as('created_at'),
      ])
      .where('user_id', '=', userId),
  );
  // Every recovery code entered tries to spend one, right or wrong: built once (prepared-query.ts).
  const spendUnused = prepareQuery(
    db,
    ({ userId, digest, usedAt }: { userId: number; digest: string; usedAt: number }) =>
      db
        .updateTable('recovery_codes')
        .set({ used_at: usedAt })
        .where('user_id', '=', userId)
        .where('code_hmac', '=', digest)
        .where('used_at', 'is', null),
  );
  return {
    async replaceAll(userId, digests) {
      await db.transaction().execute(async (trx) => {
        await lockAccount(trx, userId);
        await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
        await insert(trx, userId, digests);
      });
    },
    async addFirstSet(userId, digests) {
      return db.transaction().execute(async (trx) => {
        await lockAccount(trx, userId);
        const existing = await trx
          .selectFrom('recovery_codes')
          .select('user_id')
          .where('user_id', '=', userId)
          .limit(1)
          .executeTakeFirst();
        if (existing) return false;
        await insert(trx, userId, digests);
        return true;
      });
    },
    async spend(userId, digest, at) {
      // The check and the write are one statement: of racing uses, only the one whose update
      // changes the row wins.
      const result = await spendUnused.run({ userId, digest, usedAt: at.getTime() });
      return Number(result.numAffectedRows) === 1;
    },
    async countUnused(userId) {
      const { count } = (await unusedOf.first({ userId }))!;
      return Number(count);
    },
    async createdAt(userId) {
      const row = await db
        .selectFrom('recovery_codes')
        .select('created_at')
        .where('user_id', '=', userId)
        .limit(1)
        .executeTakeFirst();
      return row ? new Date(row.created_at) : null;
    },
    async summary(userId) {
      const row = (await summaryOf.first({ userId }))!;
      const total = Number(row.total);
      return {
        total,
        unused: total - Number(row.used),
        createdAt: row.created_at === null ? null : new Date(Number(row.created_at)),
      };
    },
    async removeAll(userId) {
      const result = await db.deleteFrom('recovery_codes').where('user_id', '=', userId).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
