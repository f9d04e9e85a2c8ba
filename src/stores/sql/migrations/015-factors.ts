import type { Migration } from '../migrate.js';
import { addIdColumn } from './columns.js';

/**
 * More than one factor (issue 12).
 *
 * - `factors`: an account's authenticator apps (`totp`) and passkeys (`passkey`), each named by its
 *   owner. A TOTP secret is kept only sealed (AES-256-GCM under FACTOR_ENCRYPTION_KEY), with the
 *   last time step it accepted, so a code is never accepted twice (one conditional update). A
 *   passkey keeps its credential id (unique across the site), public key, signature counter and
 *   transports. The phone is the account's own number (users.phone_e164), not a row here.
 * - `recovery_codes`: only an HMAC-SHA256 of each code, keyed by a secret derived from
 *   FACTOR_ENCRYPTION_KEY (a copy of the database opens nothing); `used_at` is set by the one
 *   conditional update that spends a code.
 * - `remembered_browsers`: "remember this browser" tokens as SHA-256 digests only.
 * - users: `default_factor` (sms, voice, totp or passkey; null: the phone by its channel),
 *   `two_factor_off_at` (MFA_POLICY=optional: the person turned the second step off),
 *   `recovery_codes_offered_at` (the offer after the first login was seen, made or skipped) and
 *   `phone_last_used_at` (the phone as a factor: when its code last let someone in).
 */
export const factors: Migration = {
  name: '015-factors',
  async up(db, dialect) {
    await addIdColumn(db.schema.createTable('factors'), dialect, 'integer')
      .addColumn('user_id', 'integer', (column) =>
        column.notNull().references('users.id').onDelete('cascade'),
      )
      .addColumn('kind', 'text', (column) => column.notNull())
      .addColumn('label', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('totp_secret', 'text')
      .addColumn('totp_last_step', 'bigint')
      .addColumn('credential_id', 'text')
      .addColumn('public_key', 'text')
      .addColumn('sign_count', 'bigint')
      .addColumn('transports', 'text')
      .addColumn('user_verified', 'integer')
      .execute();
    await db.schema.createIndex('factors_user').on('factors').column('user_id').execute();
    await db.schema
      .createIndex('factors_credential_id')
      .on('factors')
      .column('credential_id')
      .unique()
      .execute();

    await db.schema
      .createTable('recovery_codes')
      .addColumn('user_id', 'integer', (column) =>
        column.notNull().references('users.id').onDelete('cascade'),
      )
      .addColumn('code_hmac', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('used_at', 'bigint')
      .addPrimaryKeyConstraint('recovery_codes_pk', ['user_id', 'code_hmac'])
      .execute();

    await addIdColumn(db.schema.createTable('remembered_browsers'), dialect, 'integer')
      .addColumn('user_id', 'integer', (column) =>
        column.notNull().references('users.id').onDelete('cascade'),
      )
      .addColumn('token_hash', 'text', (column) => column.notNull().unique())
      .addColumn('label', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('last_used_at', 'bigint', (column) => column.notNull())
      .addColumn('expires_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema
      .createIndex('remembered_browsers_user')
      .on('remembered_browsers')
      .column('user_id')
      .execute();

    await db.schema.alterTable('users').addColumn('default_factor', 'text').execute();
    await db.schema.alterTable('users').addColumn('two_factor_off_at', 'bigint').execute();
    await db.schema.alterTable('users').addColumn('recovery_codes_offered_at', 'bigint').execute();
    await db.schema.alterTable('users').addColumn('phone_last_used_at', 'bigint').execute();
  },
};
