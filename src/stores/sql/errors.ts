import type {
  CompiledQuery,
  DatabaseConnection,
  Dialect,
  Driver,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely';
import { StoreUnavailableError } from '../errors.js';

/**
 * Which database failures mean "the store cannot be reached right now" (the 503 page, and the next
 * request tries again) rather than a bug in the code (a 500 that someone must fix). Every query of
 * the SQL stores goes through the driver below, so no store has to remember to ask.
 */

/** SQLite: another process holds a lock, the disk failed or filled, the file cannot be opened or read. */
const SQLITE_UNAVAILABLE =
  /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|NOMEM|INTERRUPT|PROTOCOL|CORRUPT|NOTADB|NOLFS|AUTH)(_|$)/;

/**
 * PostgreSQL SQLSTATE classes and codes: 08 connection exceptions, 53 insufficient resources
 * (too many connections, disk full, out of memory), 57P01-57P05 shutdown and idle timeouts,
 * 57014 a statement cancelled by statement_timeout, 55P03 lock_timeout, 58 system (I/O) errors,
 * 25006 a read-only standby after a failover, 40001/40P01 a serialization failure or deadlock
 * (passing: the same request works when tried again).
 */
const POSTGRES_UNAVAILABLE = /^(08|53|58)...$|^57P0[1-5]$|^(57014|55P03|25006|40001|40P01)$/;

/** Node's socket errors on the way to PostgreSQL. */
const NETWORK_UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** What node-postgres and better-sqlite3 say, without a code, when the connection is gone or never came. */
const UNAVAILABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|connection is not open|not queryable|query read timeout|cannot use a pool after calling end|has already been destroyed|connection has been discarded/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, message, errors } = current as { code?: unknown; message?: unknown; errors?: unknown };
    if (typeof code === 'string') {
      if (SQLITE_UNAVAILABLE.test(code) || POSTGRES_UNAVAILABLE.test(code) || NETWORK_UNAVAILABLE.has(code)) {
        return true;
      }
    }
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
    // Node's "connect ECONNREFUSED" to both ::1 and 127.0.0.1 is an AggregateError of both.
    if (Array.isArray(errors) && errors.some(isDatabaseUnavailable)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Another SQLite connection holds the write lock: worth a short retry (the session store does), then a 503. */
export function isSqliteBusy(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** A unique index refused the write (SQLite's SQLITE_CONSTRAINT_UNIQUE, PostgreSQL's 23505). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

/** A foreign key refused the write: the row it points at is gone (SQLite, PostgreSQL's 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503';
}

const STORE_NAME = 'database';

/** A driver's error as the stores see it: an unavailable database becomes StoreUnavailableError. */
export function translateDatabaseError(error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  return isDatabaseUnavailable(error) ? new StoreUnavailableError(STORE_NAME, error) : error;
}

async function translating<T>(operation: () => Promise<T> | T): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw translateDatabaseError(error);
  }
}

/** A connection whose failures come out translated; the dialect's own driver gets its own connection back. */
class TranslatingConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return translating(() => this.inner.executeQuery<R>(compiledQuery));
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize?: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(compiledQuery, chunkSize);
    } catch (error) {
      throw translateDatabaseError(error);
    }
  }
}

const innerOf = (connection: DatabaseConnection) => (connection as TranslatingConnection).inner;

/** Wraps a dialect's driver so that every way it can fail to reach the database is StoreUnavailableError. */
class TranslatingDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init() {
    return translating(() => this.inner.init());
  }
  async acquireConnection() {
    return new TranslatingConnection(await translating(() => this.inner.acquireConnection()));
  }
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    return translating(() => this.inner.beginTransaction(innerOf(connection), settings));
  }
  commitTransaction(connection: DatabaseConnection) {
    return translating(() => this.inner.commitTransaction(innerOf(connection)));
  }
  rollbackTransaction(connection: DatabaseConnection) {
    return translating(() => this.inner.rollbackTransaction(innerOf(connection)));
  }
  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    return translating(() => this.inner.savepoint!(innerOf(connection), name, compile));
  }
  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    return translating(() => this.inner.rollbackToSavepoint!(innerOf(connection), name, compile));
  }
  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    return translating(() => this.inner.releaseSavepoint!(innerOf(connection), name, compile));
  }
  releaseConnection(connection: DatabaseConnection) {
    return this.inner.releaseConnection(innerOf(connection));
  }
  destroy() {
    return this.inner.destroy();
  }
}

/** The same dialect, with its failures to reach the database turned into StoreUnavailableError. */
export function withUnavailableErrors(dialect: Dialect): Dialect {
  return {
    createDriver: () => new TranslatingDriver(dialect.createDriver()),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
}
