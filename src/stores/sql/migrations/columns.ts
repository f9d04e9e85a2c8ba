import type { CreateTableBuilder } from 'kysely';
import type { SqlDialect } from '../database.js';

/**
 * The one thing the schema builder cannot say the same way in both dialects: a row id that the
 * database assigns. SQLite does it for a column declared exactly `integer primary key` (an alias
 * of its rowid; `bigint primary key` would not be one, and rowids are 64-bit anyway); PostgreSQL
 * needs an identity column, `bigint` where the table may outgrow 2^31 rows over its life.
 */
export function addIdColumn<T extends string, C extends string>(
  table: CreateTableBuilder<T, C>,
  dialect: SqlDialect,
  postgresType: 'integer' | 'bigint',
): CreateTableBuilder<T, C | 'id'> {
  return dialect === 'sqlite'
    ? table.addColumn('id', 'integer', (column) => column.primaryKey())
    : table.addColumn('id', postgresType, (column) => column.primaryKey().generatedByDefaultAsIdentity());
}
