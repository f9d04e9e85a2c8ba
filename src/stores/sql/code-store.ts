import { randomBytes } from 'node:crypto';
import type { Clock } from '../../clock.js';
import {
  generateNumericCode,
  hashIssuedCode,
  matchesIssuedCodeHash,
  type CodeStore,
} from '../../mfa/code-store.js';
import type { SqlDatabase } from './database.js';
import { prepareQuery } from './prepared-query.js';

const EXPIRED_ROWS_KEPT_MS = 24 * 60 * 60 * 1000;

export function createSqlCodeStore({ db }: SqlDatabase, clock: Clock, hashKey: string): CodeStore {
  // Read for every code entered: built once (prepared-query.ts).
  const selectById = prepareQuery(db, ({ id }: { id: string }) =>
    db.selectFrom('issued_codes').selectAll().where('id', '=', id),
  );
  return {
    async issue({ to, scope, digits, ttlMs }) {
      const now = clock.now().getTime();
      await db
        .deleteFrom('issued_codes')
        .where('expires_at', '<', now - EXPIRED_ROWS_KEPT_MS)
        .execute();
      const id = randomBytes(18).toString('base64url');
      const code = generateNumericCode(digits);
      await db
        .insertInto('issued_codes')
        .values({
          id,
          phone_e164: to,
          scope,
          code_hash: hashIssuedCode(hashKey, { id, to, scope, code }).toString('hex'),
          created_at: now,
          expires_at: now + ttlMs,
        })
        .execute();
      return { id, code, expiresAt: new Date(now + ttlMs) };
    },
    async check({ id, to, scope, code }) {
      const row = await selectById.first({ id });
      if (!row || row.voided_at !== null || row.used_at !== null) return 'invalid';
      if (row.phone_e164 !== to || row.scope !== scope) return 'invalid';
      if (row.expires_at <= clock.now().getTime()) return 'expired';
      if (!matchesIssuedCodeHash(row.code_hash, hashIssuedCode(hashKey, { id, to, scope, code }))) {
        return 'invalid';
      }
      // Two requests racing with the same code (on one instance or two): only the one whose update
      // changes the row wins. A code voided since the read above is not accepted either.
      const burnt = await db
        .updateTable('issued_codes')
        .set({ used_at: clock.now().getTime() })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .where('voided_at', 'is', null)
        .executeTakeFirst();
      return burnt.numUpdatedRows === 1n ? 'valid' : 'invalid';
    },
    async void(id) {
      await db
        .updateTable('issued_codes')
        .set({ voided_at: clock.now().getTime() })
        .where('id', '=', id)
        .where('voided_at', 'is', null)
        .execute();
    },
  };
}
