import type { Selectable } from 'kysely';
import type { RememberedBrowser, RememberedBrowserStore } from '../../auth/remembered-browser-store.js';
import type { Clock } from '../../clock.js';
import type { SqlDatabase } from './database.js';
import type { RememberedBrowsersTable } from './schema.js';

function toRememberedBrowser(row: Selectable<RememberedBrowsersTable>): RememberedBrowser {
  return {
    id: row.id,
    userId: row.user_id,
    label: row.label,
    createdAt: new Date(row.created_at),
    lastUsedAt: new Date(row.last_used_at),
    expiresAt: new Date(row.expires_at),
  };
}

/**
 * Remembered browsers in the database (they last 30 days, across restarts and instances). Only
 * each token's SHA-256 is kept: a copy of the database lets no one skip a code.
 */
export function createSqlRememberedBrowserStore(database: SqlDatabase, clock: Clock): RememberedBrowserStore {
  const { db } = database;
  return {
    async add(browser, { maxPerAccount }) {
      const now = clock.now().getTime();
      // The insert and the trim in one transaction, so two parallel adds cannot leave more than
      // the cap. PostgreSQL locks the account's row first. On SQLite the first statement is a
      // write, so the transaction waits for the write lock from the start: one that read first
      // could not upgrade once another connection had written (SQLITE_BUSY, no waiting).
      const row = await db.transaction().execute(async (trx) => {
        if (database.dialect === 'postgres') {
          await trx
            .selectFrom('users')
            .select('id')
            .where('id', '=', browser.userId)
            .forUpdate()
            .executeTakeFirst();
        }
        await trx
          .deleteFrom('remembered_browsers')
          .where('user_id', '=', browser.userId)
          .where('expires_at', '<=', now)
          .execute();
        const added = await trx
          .insertInto('remembered_browsers')
          .values({
            user_id: browser.userId,
            token_hash: browser.tokenHash,
            label: browser.label,
            created_at: now,
            last_used_at: now,
            expires_at: browser.expiresAt.getTime(),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        // The oldest go: every row of the account but the newest `maxPerAccount`.
        await trx
          .deleteFrom('remembered_browsers')
          .where('user_id', '=', browser.userId)
          .where('id', 'not in', (eb) =>
            eb
              .selectFrom('remembered_browsers')
              .select('id')
              .where('user_id', '=', browser.userId)
              .orderBy('created_at', 'desc')
              .orderBy('id', 'desc')
              .limit(maxPerAccount),
          )
          .execute();
        return added;
      });
      return toRememberedBrowser(row);
    },

    async rotate({ userId, tokenHash, newTokenHash, usedAt }) {
      const now = usedAt.getTime();
      // The conditions and the write are one statement: of two racing uses of one token, only the
      // one whose update changes the row gets it (PostgreSQL re-checks the condition on the row the
      // first one wrote, whose digest is no longer this one). It waits for the disk: a used token
      // must stay used after a power cut.
      const row = await database.durably(() =>
        db
          .updateTable('remembered_browsers')
          .set({ token_hash: newTokenHash, last_used_at: now })
          .where('token_hash', '=', tokenHash)
          .where('user_id', '=', userId)
          .where('expires_at', '>', now)
          .returningAll()
          .executeTakeFirst(),
      );
      return row ? toRememberedBrowser(row) : null;
    },

    async isLive(tokenHash) {
      const row = await db
        .selectFrom('remembered_browsers')
        .select('id')
        .where('token_hash', '=', tokenHash)
        .where('expires_at', '>', clock.now().getTime())
        .executeTakeFirst();
      return row !== undefined;
    },

    async listForUser(userId) {
      const rows = await db
        .selectFrom('remembered_browsers')
        .selectAll()
        .where('user_id', '=', userId)
        .where('expires_at', '>', clock.now().getTime())
        .orderBy('last_used_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return rows.map(toRememberedBrowser);
    },

    async remove(userId, id) {
      const result = await db
        .deleteFrom('remembered_browsers')
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    async removeAllForUser(userId) {
      const result = await db
        .deleteFrom('remembered_browsers')
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async deleteExpired(now, batchSize) {
      const result = await db
        .deleteFrom('remembered_browsers')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('remembered_browsers')
            .select('id')
            .where('expires_at', '<=', now.getTime())
            .orderBy('expires_at')
            .limit(batchSize),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
