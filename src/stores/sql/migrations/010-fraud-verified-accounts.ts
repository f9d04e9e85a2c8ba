import { sql } from 'kysely';
import type { Migration } from '../migrate.js';

/**
 * Which accounts have completed a code to which number (the toll-fraud guard's attack review). An
 * account that has gets its own per-number allowance, so strangers' accounts registered with the
 * same number cannot use it up (they share the number's common one), and with Twilio it may cancel
 * a code such an account left pending.
 *
 * Numbered 010 as its .sql twin was (written beside these migrations, on another branch): a
 * database that recorded "010-fraud-verified-accounts.sql" already has all of this.
 */
export const fraudVerifiedAccounts: Migration = {
  name: '010-fraud-verified-accounts',
  async up(db) {
    await db.schema
      .createTable('verified_number_accounts')
      .addColumn('phone_e164', 'text', (column) => column.notNull())
      .addColumn('user_id', 'integer', (column) =>
        column.notNull().references('users.id').onDelete('cascade'),
      )
      .addColumn('first_verified_at', 'bigint', (column) => column.notNull())
      .addColumn('last_verified_at', 'bigint', (column) => column.notNull())
      .addPrimaryKeyConstraint('verified_number_accounts_pkey', ['phone_e164', 'user_id'])
      .execute();

    // Codes accepted before this table existed, as far as the challenges still kept tell. (The
    // WHERE also keeps SQLite from reading ON CONFLICT as a join's ON.)
    await db
      .insertInto('verified_number_accounts')
      .columns(['phone_e164', 'user_id', 'first_verified_at', 'last_verified_at'])
      .expression((eb) =>
        eb
          .selectFrom('challenges')
          .select((select) => [
            'phone_e164',
            'user_id',
            select.fn.min('closed_at').as('first_verified_at'),
            select.fn.max('closed_at').as('last_verified_at'),
          ])
          .where('close_reason', '=', 'accepted')
          .where('closed_at', 'is not', null)
          .groupBy(['phone_e164', 'user_id']),
      )
      .onConflict((conflict) => conflict.doNothing())
      .execute();

    // The breaker's history now counts numbers verified per day ('verified_number'), not codes: one
    // number verified again and again must not raise it. The codes counted so far carry over as an
    // upper bound, so thresholds do not drop to the floor on upgrade; they age out within 15 days.
    await db
      .insertInto('sending_hourly')
      .columns(['country', 'event', 'hour', 'count'])
      .expression((eb) =>
        eb
          .selectFrom('sending_hourly')
          // A literal, not a parameter: PostgreSQL cannot type a bare parameter in a select list.
          .select(['country', sql.lit('verified_number').as('event'), 'hour', 'count'])
          .where('event', '=', 'verified'),
      )
      .onConflict((conflict) => conflict.doNothing())
      .execute();
  },
};
