import type { Migration } from '../migrate.js';

/**
 * The toll-fraud guard's durable facts (issue 8) and the code-entry ceiling. Written after 005 to
 * 008 on the branch that moved the stores onto Kysely, but numbered 004 as its .sql twin was: a
 * database that recorded "004-fraud-guard.sql" has these tables, and one that ran 005 to 008
 * without it gets them at its next start (the runner applies a missing migration out of order).
 */
export const fraudGuard: Migration = {
  name: '004-fraud-guard',
  async up(db) {
    // Numbers that completed a code: they still get codes when the daily budget is spent or their
    // country's conversion breaker has paused new numbers.
    await db.schema
      .createTable('verified_numbers')
      .addColumn('phone_e164', 'text', (column) => column.primaryKey())
      .addColumn('first_verified_at', 'bigint', (column) => column.notNull())
      .addColumn('last_verified_at', 'bigint', (column) => column.notNull())
      .execute();

    // What was sent, verified, refused (or, in record mode, flagged) per country and UTC hour: the
    // operator's "Sending" view and the 14-day high of verified codes the breaker scales with.
    // Rows older than 15 days are swept. `hour` counts hours since the epoch; `count` stays an
    // integer so that PostgreSQL's SUM of it is an int8 (a number here), not a numeric (a string).
    await db.schema
      .createTable('sending_hourly')
      .addColumn('country', 'text', (column) => column.notNull())
      .addColumn('event', 'text', (column) => column.notNull())
      .addColumn('hour', 'integer', (column) => column.notNull())
      .addColumn('count', 'integer', (column) => column.notNull())
      .addPrimaryKeyConstraint('sending_hourly_pkey', ['country', 'event', 'hour'])
      .execute();
    await db.schema.createIndex('sending_hourly_hour').on('sending_hourly').column('hour').execute();

    // Wrong codes in a row per account, across every window (NIST SP 800-63B's ceiling of 100):
    // at the ceiling, code entry is suspended until an admin unlocks it.
    await db.schema
      .createTable('code_entry_failures')
      .addColumn('user_id', 'integer', (column) =>
        column.primaryKey().references('users.id').onDelete('cascade'),
      )
      .addColumn('consecutive', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('suspended_at', 'bigint')
      .execute();
  },
};
