import { sql, type Kysely } from 'kysely';
import type { SqlDialect } from './database.js';
import { MIGRATIONS } from './migrations/index.js';

/**
 * A step of the schema, written once with Kysely's schema builder for SQLite and PostgreSQL alike.
 * Its name ("007-username-keys") is recorded in schema_migrations once it has run. `db` is bound
 * to the one connection and transaction the migration runs in.
 */
export interface Migration {
  name: string;
  up(db: Kysely<any>, dialect: SqlDialect): Promise<void>;
}

/**
 * Applies, in order, each migration not yet recorded in schema_migrations, each in its own
 * transaction together with its record, so a restart applies only the new ones and a failed one
 * leaves nothing half done. Returns the names it applied.
 *
 * Databases made before these TypeScript migrations recorded the .sql file names of the time
 * ("001-initial.sql"): a migration counts as applied under either name, so such a database only
 * gets the newer migrations and keeps everything in it.
 *
 * Several instances may start at once on one database: each migration takes a lock first (SQLite's
 * write lock with BEGIN IMMEDIATE, a PostgreSQL advisory lock for the schema) and checks the record
 * again under it, so exactly one instance applies it and the others wait, then skip it.
 *
 * A migration missing from the record is applied even when later ones are recorded (a database
 * that ran 005 before 004 existed gets 004 at its next start): migrations must not depend on the
 * order of ones that were written in parallel.
 */
export async function applyMigrations(
  db: Kysely<any>,
  dialect: SqlDialect,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<string[]> {
  const names = migrations.map((migration) => migration.name);
  if (new Set(names).size !== names.length || names.some((name, i) => i > 0 && name <= names[i - 1]!)) {
    throw new Error(`migrations must have distinct names in ascending order: ${names.join(', ')}`);
  }
  const applied: string[] = [];
  await db.connection().execute(async (connection) => {
    for (const migration of migrations) {
      const ran = await underMigrationLock(connection, dialect, async () => {
        if (await isRecorded(connection, migration.name)) return false;
        await migration.up(connection, dialect);
        await connection
          .insertInto('schema_migrations')
          .values({ name: migration.name, applied_at: Date.now() })
          .execute();
        return true;
      });
      if (ran) applied.push(migration.name);
    }
  });
  return applied;
}

async function underMigrationLock<T>(
  connection: Kysely<any>,
  dialect: SqlDialect,
  work: () => Promise<T>,
): Promise<T> {
  if (dialect === 'sqlite') {
    await sql`BEGIN IMMEDIATE`.execute(connection);
  } else {
    await sql`BEGIN`.execute(connection);
    // A migration may rebuild a large table: the requests' 5 s statement limit does not apply here,
    // nor does it to an instance waiting for the lock while another migrates.
    await sql`SET LOCAL statement_timeout = 0`.execute(connection);
    // One lock per schema: tests that each migrate their own schema do not wait for each other.
    await sql`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.schema_migrations'))`.execute(
      connection,
    );
  }
  try {
    await connection.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('name', 'text', (column) => column.primaryKey())
      .addColumn('applied_at', 'bigint', (column) => column.notNull())
      .execute();
    const result = await work();
    await sql`COMMIT`.execute(connection);
    return result;
  } catch (error) {
    await sql`ROLLBACK`.execute(connection).catch(() => undefined);
    throw error;
  }
}

async function isRecorded(connection: Kysely<any>, name: string): Promise<boolean> {
  const row = await connection
    .selectFrom('schema_migrations')
    .select('name')
    .where('name', 'in', [name, `${name}.sql`])
    .executeTakeFirst();
  return row !== undefined;
}
