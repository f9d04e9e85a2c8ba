import { sql } from 'kysely';
import type { Migration } from '../migrate.js';

/**
 * The verification API's state (issue 13). `api_verifications`: one row per code sent for a key,
 * under its label, to one number; never the code. `api_idempotency`: each Idempotency-Key a key
 * sent with a new verification, the digest of the request it came with and, once answered, the
 * answer to replay. Both go with their key (ON DELETE CASCADE); housekeeping deletes old rows.
 */
export const apiVerifications: Migration = {
  name: '017-api-verifications',
  async up(db) {
    await db.schema
      .createTable('api_verifications')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('key_id', 'integer', (column) =>
        column.notNull().references('api_keys.id').onDelete('cascade'),
      )
      .addColumn('label', 'text', (column) => column.notNull())
      .addColumn('phone_e164', 'text', (column) => column.notNull())
      .addColumn('channel', 'text', (column) => column.notNull().check(sql`channel IN ('sms', 'voice')`))
      .addColumn('provider', 'text', (column) => column.notNull())
      .addColumn('handle', 'text')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('status', 'text', (column) =>
        column
          .notNull()
          .defaultTo('pending')
          .check(sql`status IN ('pending', 'approved', 'expired', 'max_attempts', 'canceled')`),
      )
      .addColumn('closed_at', 'bigint')
      .addColumn('checking_until', 'bigint')
      .execute();
    // A key's pending verifications to a number under a label (a new one voids them; /validate-auth).
    await db.schema
      .createIndex('api_verifications_key_label_phone')
      .on('api_verifications')
      .columns(['key_id', 'label', 'phone_e164', 'status'])
      .execute();
    await db.schema
      .createIndex('api_verifications_expires_at')
      .on('api_verifications')
      .column('expires_at')
      .execute();

    await db.schema
      .createTable('api_idempotency')
      .addColumn('key_id', 'integer', (column) =>
        column.notNull().references('api_keys.id').onDelete('cascade'),
      )
      .addColumn('idempotency_key', 'text', (column) => column.notNull())
      .addColumn('request_hash', 'text', (column) => column.notNull())
      .addColumn('response_status', 'integer')
      .addColumn('response_body', 'text')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('completed_at', 'bigint')
      .addPrimaryKeyConstraint('api_idempotency_pkey', ['key_id', 'idempotency_key'])
      .execute();
    await db.schema
      .createIndex('api_idempotency_created_at')
      .on('api_idempotency')
      .column('created_at')
      .execute();
  },
};
