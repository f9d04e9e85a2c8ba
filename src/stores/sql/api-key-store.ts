import type { Selectable } from 'kysely';
import type { ApiKey, ApiKeyStore } from '../../api/keys.js';
import type { Clock } from '../../clock.js';
import { CHANNELS, type Channel } from '../../mfa/provider.js';
import type { SqlDatabase } from './database.js';
import type { ApiKeysTable } from './schema.js';

const isChannel = (value: string): value is Channel => (CHANNELS as readonly string[]).includes(value);

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    name: row.name,
    hint: row.key_hint,
    channels: row.channels.split(',').filter(isChannel),
    createdAt: new Date(row.created_at),
    createdBy: row.created_by,
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
  };
}

/** API keys in the database: every instance must see a key, and its revocation, at once. */
export function createSqlApiKeyStore(database: SqlDatabase, clock: Clock): ApiKeyStore {
  const { db } = database;
  return {
    async create({ name, keyHash, hint, channels, createdBy }) {
      const row = await db
        .insertInto('api_keys')
        .values({
          name,
          key_hash: keyHash,
          key_hint: hint,
          channels: CHANNELS.filter((channel) => channels.includes(channel)).join(','),
          created_by: createdBy,
          created_at: clock.now().getTime(),
          last_used_at: null,
          revoked_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toApiKey(row);
    },
    async findByHash(keyHash) {
      const row = await db
        .selectFrom('api_keys')
        .selectAll()
        .where('key_hash', '=', keyHash)
        .executeTakeFirst();
      return row ? toApiKey(row) : null;
    },
    async findById(id) {
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toApiKey(row) : null;
    },
    async list() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('id', 'desc').execute();
      return rows.map(toApiKey);
    },
    async revoke(id) {
      // One conditional write: of two admins revoking at once, one is told it was them.
      const result = await database.durably(() =>
        db
          .updateTable('api_keys')
          .set({ revoked_at: clock.now().getTime() })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst(),
      );
      return result.numUpdatedRows > 0n;
    },
    async touch(id, at, unlessSince) {
      await db
        .updateTable('api_keys')
        .set({ last_used_at: at.getTime() })
        .where('id', '=', id)
        .where((eb) =>
          eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', unlessSince.getTime())]),
        )
        .execute();
    },
  };
}
