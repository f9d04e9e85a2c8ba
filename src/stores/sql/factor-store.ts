import type { Selectable, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Factor, FactorStore, PasskeyFactor } from '../../factors/store.js';
import type { SqlDatabase } from './database.js';
import { isUniqueViolation } from './errors.js';
import { prepareQuery } from './prepared-query.js';
import type { FactorsTable, Schema } from './schema.js';

function toFactor(row: Selectable<FactorsTable>): Factor {
  const base = {
    id: row.id,
    userId: row.user_id,
    label: row.label,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at),
  };
  if (row.kind === 'totp') {
    return { ...base, kind: 'totp', sealedSecret: row.totp_secret ?? '', lastStep: row.totp_last_step };
  }
  return {
    ...base,
    kind: 'passkey',
    credentialId: row.credential_id ?? '',
    publicKey: row.public_key ?? '',
    signCount: row.sign_count ?? 0,
    transports: row.transports ? row.transports.split(',') : [],
    userVerified: row.user_verified === 1,
  };
}

export function createSqlFactorStore(database: SqlDatabase, clock: Clock): FactorStore {
  const { db } = database;
  /** Serialises changes to one account's factors: PostgreSQL locks the account's row (SQLite runs transactions one at a time). */
  const lockAccount = (trx: Transaction<Schema>, userId: number) =>
    trx
      .selectFrom('users')
      .select('id')
      .where('id', '=', userId)
      .$call((query) => (database.dialect === 'postgres' ? query.forUpdate() : query))
      .executeTakeFirst();
  // Every code page asks which factors the account has: built once (prepared-query.ts).
  const factorsOf = prepareQuery(db, ({ userId }: { userId: number }) =>
    db.selectFrom('factors').selectAll().where('user_id', '=', userId).orderBy('id'),
  );
  return {
    async listForUser(userId) {
      return (await factorsOf.run({ userId })).rows.map(toFactor);
    },
    async findById(userId, factorId) {
      const row = await db
        .selectFrom('factors')
        .selectAll()
        .where('user_id', '=', userId)
        .where('id', '=', factorId)
        .executeTakeFirst();
      return row ? toFactor(row) : null;
    },
    async findByCredentialId(credentialId) {
      const row = await db
        .selectFrom('factors')
        .selectAll()
        .where('credential_id', '=', credentialId)
        .where('kind', '=', 'passkey')
        .executeTakeFirst();
      return row ? (toFactor(row) as PasskeyFactor) : null;
    },
    async add(factor, { maxPerKind }) {
      const now = clock.now().getTime();
      const values = {
        user_id: factor.userId,
        kind: factor.kind,
        label: factor.label,
        created_at: now,
        last_used_at: null,
        totp_secret: factor.kind === 'totp' ? factor.sealedSecret : null,
        totp_last_step: factor.kind === 'totp' ? factor.lastStep : null,
        credential_id: factor.kind === 'passkey' ? factor.credentialId : null,
        public_key: factor.kind === 'passkey' ? factor.publicKey : null,
        sign_count: factor.kind === 'passkey' ? factor.signCount : null,
        transports: factor.kind === 'passkey' ? factor.transports.join(',') : null,
        user_verified: factor.kind === 'passkey' ? (factor.userVerified ? 1 : 0) : null,
      };
      try {
        // The count and the insert in one transaction, so two parallel adds cannot pass the cap together
        // (SQLite runs transactions one at a time; PostgreSQL locks the account's row first).
        const row = await db.transaction().execute(async (trx) => {
          await lockAccount(trx, factor.userId);
          const { count } = await trx
            .selectFrom('factors')
            .select((eb) => eb.fn.countAll<number | string>().as('count'))
            .where('user_id', '=', factor.userId)
            .where('kind', '=', factor.kind)
            .executeTakeFirstOrThrow();
          if (Number(count) >= maxPerKind) return null;
          return trx.insertInto('factors').values(values).returningAll().executeTakeFirstOrThrow();
        });
        return row ? toFactor(row) : null;
      } catch (error) {
        if (isUniqueViolation(error)) return null;
        throw error;
      }
    },
    async rename(userId, factorId, label) {
      const result = await db
        .updateTable('factors')
        .set({ label })
        .where('user_id', '=', userId)
        .where('id', '=', factorId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async remove(userId, factorId, { keepOneOf } = {}) {
      return db.transaction().execute(async (trx) => {
        if (keepOneOf) {
          if (keepOneOf.length === 0) return false;
          await lockAccount(trx, userId);
          const { count } = await trx
            .selectFrom('factors')
            .select((eb) => eb.fn.countAll<number | string>().as('count'))
            .where('user_id', '=', userId)
            .where('id', '!=', factorId)
            .where('kind', 'in', [...keepOneOf])
            .executeTakeFirstOrThrow();
          if (Number(count) === 0) return false;
        }
        const result = await trx
          .deleteFrom('factors')
          .where('user_id', '=', userId)
          .where('id', '=', factorId)
          .executeTakeFirst();
        return Number(result.numDeletedRows) === 1;
      });
    },
    async acceptTotpStep(factorId, step, usedAt) {
      const result = await db
        .updateTable('factors')
        .set({ totp_last_step: step, last_used_at: usedAt.getTime() })
        .where('id', '=', factorId)
        .where('kind', '=', 'totp')
        .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async recordPasskeyUse(factorId, previousCount, newCount, usedAt) {
      const movedOn = newCount > previousCount || (newCount === 0 && previousCount === 0);
      if (!movedOn) return false;
      const result = await db
        .updateTable('factors')
        .set({ sign_count: newCount, last_used_at: usedAt.getTime() })
        .where('id', '=', factorId)
        .where('kind', '=', 'passkey')
        .where('sign_count', '=', previousCount)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async removeAllForUser(userId) {
      const result = await db.deleteFrom('factors').where('user_id', '=', userId).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
