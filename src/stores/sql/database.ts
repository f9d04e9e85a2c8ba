import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  Kysely,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Dialect,
  type SqliteDatabase,
  type SqliteStatement,
} from 'kysely';
import type pg from 'pg';
import { translateDatabaseError, withUnavailableErrors } from './errors.js';
import { runPreparedQueriesImmediately } from './prepared-query.js';
import { applyMigrations } from './migrate.js';
import { RELAXED_DURABILITY_TABLES, type Schema } from './schema.js';

export type SqlDialect = 'sqlite' | 'postgres';

/** One database, SQLite or PostgreSQL, that every SQL store is built on. */
export interface SqlDatabase {
  db: Kysely<Schema>;
  dialect: SqlDialect;
  /** True while the database answers a trivial query (for /healthz); never throws. */
  isHealthy(): Promise<boolean>;
  /**
   * Runs `work` with every write waiting for the disk, those to RELAXED_DURABILITY_TABLES too: for
   * the rare writes there that must survive a power cut (a suspension, an ended session). Writes
   * of other requests that run meanwhile wait for the disk as well, which is only slower.
   */
  durably<T>(work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export type SqlDatabaseOptions =
  | {
      /** A file (created with its folder if missing), or ':memory:'. */
      sqlitePath: string;
      /** How long one statement waits for another process's write lock; see REQUEST_BUSY_TIMEOUT_MS. */
      busyTimeoutMs?: number;
      /** Tests only: told what the connection runs and what Kysely builds (see SqliteTrace). */
      trace?: SqliteTrace;
    }
  | {
      /** postgres://user:password@host:port/database */
      postgresUrl: string;
      /** Tables live in this schema instead of the user's default one (the tests give each test its own). */
      schema?: string;
      /** Connections kept at most, per process. */
      poolSize?: number;
      /**
       * A pooled connection that breaks (PostgreSQL restarted, a proxy cut it) is reported here, for
       * the log; unheard, node-postgres would crash the process. The pool opens new ones as needed.
       */
      onError: (error: Error) => void;
    };

/**
 * What a test hears of the work behind a request, to check what it costs. Nothing in production
 * sets one: better-sqlite3 would write out every statement it runs, values and all.
 */
export interface SqliteTrace {
  /** A statement SQLite ran, with its values written in (better-sqlite3's `verbose`). */
  ran(statement: string): void;
  /**
   * A query Kysely built and compiled. A prepared query (prepared-query.ts) is compiled once, when
   * its store is made; one compiled while a request runs was built for that request.
   */
  compiled(statement: string): void;
}

/**
 * How long one SQLite statement waits for another process's write lock before failing with
 * SQLITE_BUSY: not at all. better-sqlite3 is synchronous, so any wait here blocks the whole event
 * loop (every request, static files included), and many requests meeting the lock at once would
 * add their waits up. The session store retries on timers instead (stores/sql/session-store.ts);
 * anything else that meets a lock fails at once into the 503 page.
 */
export const REQUEST_BUSY_TIMEOUT_MS = 0;
/** At start nothing is served yet, so migrations may wait longer for a lock held elsewhere. */
const STARTUP_BUSY_TIMEOUT_MS = 5000;

/** A request waits at most this long for a pooled connection (or a new one) before its 503 page. */
const POSTGRES_CONNECT_TIMEOUT_MS = 2_000;
/** PostgreSQL cancels a statement that runs (or waits on a lock) longer than this: a 503, not a hang. */
const POSTGRES_STATEMENT_TIMEOUT_MS = 5_000;
/**
 * A PostgreSQL that stops answering without closing its connections (a frozen host, a network
 * that drops packets) never sends the statement_timeout's cancel: the client gives up itself a
 * little later, and the connection that timed out is thrown away, not returned to the pool, since
 * its unanswered query would hold every later one on it.
 */
const POSTGRES_QUERY_TIMEOUT_MS = 5_500;
/**
 * After a query went unanswered, requests fail at once for this long instead of each waiting out
 * its own timeout (a page makes several queries: their waits would add up); then one tries again.
 */
const POSTGRES_SILENCE_BACKOFF_MS = 2_000;
const POSTGRES_IDLE_TIMEOUT_MS = 30_000;
/** Dead peers are noticed by TCP keep-alive probes after this long idle, not after the OS's two hours. */
const POSTGRES_KEEPALIVE_DELAY_MS = 10_000;
const POSTGRES_POOL_SIZE = 10;

/**
 * pg answers int8 (bigint columns, COUNT) as strings, since they may exceed 2^53. Ours are
 * milliseconds since the epoch and row ids, far below that: parse them into numbers, for this
 * pool's connections only (pg's global parsers are left alone).
 */
const INT8_OID = 20;
const postgresTypesOf = (types: typeof pg.types) => ({
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
});

/** A schema name safe to put in the connection's search_path. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Distinct SQL texts kept compiled; the site has a few dozen, so this bound is only a backstop. */
const SQLITE_STATEMENT_CACHE_SIZE = 500;

/** The table a statement Kysely wrote changes, or none for a read or anything else. */
const WRITTEN_TABLE = /^(?:insert into|update|delete from) "(\w+)"/;

/**
 * What the SQLite connection runs, shaped for Kysely's driver:
 *
 * - Kysely's SQLite driver calls prepare() for every query, and better-sqlite3 compiles the SQL
 *   each time: a profile of the account page put that at 4 % of its CPU. The same few dozen SQL
 *   texts come back on every request, so each compiled statement is kept by its text and run
 *   again. Safe to share: Kysely runs one statement at a time on this connection, better-sqlite3
 *   resets a statement after each run (a failed one too), and SQLite recompiles one whose schema
 *   changed.
 * - The connection commits with synchronous=FULL (each commit on the disk before anyone is told it
 *   worked). A write on its own (not in a transaction) to one of RELAXED_DURABILITY_TABLES runs
 *   with synchronous=NORMAL instead: a wrong code made three such writes, and waiting for the disk
 *   three times cost more than everything else the request did (issue 10). The next FULL commit
 *   or checkpoint puts those writes on the disk too. Not while `mustWaitForDisk()` says so
 *   (SqlDatabase.durably).
 */
function sqliteStatements(sqlite: Database.Database, mustWaitForDisk: () => boolean): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  const relaxed = sqlite.prepare('PRAGMA synchronous = NORMAL');
  const full = sqlite.prepare('PRAGMA synchronous = FULL');
  const relaxedCommit = <T>(write: () => T): T => {
    if (sqlite.inTransaction || mustWaitForDisk()) return write();
    relaxed.run();
    try {
      return write();
    } finally {
      full.run();
    }
  };
  // A write with RETURNING is a "reader" to better-sqlite3 and runs by all(), so both are wrapped.
  const withRelaxedCommit = (statement: Database.Statement): SqliteStatement => ({
    reader: statement.reader,
    all: (parameters) => relaxedCommit(() => statement.all(parameters)),
    run: (parameters) => relaxedCommit(() => statement.run(parameters)),
    iterate: (parameters) => relaxedCommit(() => statement.all(parameters))[Symbol.iterator](),
  });
  return {
    close: () => sqlite.close(),
    prepare(text) {
      let statement = statements.get(text);
      if (!statement) {
        const prepared = sqlite.prepare(text);
        const table = WRITTEN_TABLE.exec(text)?.[1];
        statement =
          table !== undefined && RELAXED_DURABILITY_TABLES.has(table as keyof Schema)
            ? withRelaxedCommit(prepared)
            : prepared;
        if (statements.size >= SQLITE_STATEMENT_CACHE_SIZE) statements.clear();
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/** Opens SQLite or PostgreSQL and brings the schema up to date (migrations run here, at start). */
export async function openSqlDatabase(options: SqlDatabaseOptions): Promise<SqlDatabase> {
  return 'sqlitePath' in options ? openSqlite(options) : openPostgres(options);
}

async function openSqlite(options: {
  sqlitePath: string;
  busyTimeoutMs?: number;
  trace?: SqliteTrace;
}): Promise<SqlDatabase> {
  if (options.sqlitePath !== ':memory:') mkdirSync(dirname(options.sqlitePath), { recursive: true });
  const trace = options.trace;
  const sqlite = new Database(
    options.sqlitePath,
    trace ? { verbose: (text) => trace.ran(String(text)) } : {},
  );
  sqlite.pragma(`busy_timeout = ${STARTUP_BUSY_TIMEOUT_MS}`);
  // WAL lets readers (the admin page, /healthz) run while a write is in progress.
  sqlite.pragma('journal_mode = WAL');
  // FULL: every commit is on the disk before the person is told it worked ("nothing a person saved
  // is ever lost", even on a power cut). Short-lived counters are the one exception (see
  // sqliteStatements and RELAXED_DURABILITY_TABLES).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  let durableWork = 0;
  const statements = sqliteStatements(sqlite, () => durableWork > 0);
  const dialect = withUnavailableErrors(new SqliteDialect({ database: statements }));
  const db = new Kysely<Schema>({ dialect: trace ? reportingCompiles(dialect, trace) : dialect });
  // The statements every page runs (prepared-query.ts) go straight to the connection when no
  // transaction is open on it: better-sqlite3 runs each to its end before anything else can, so
  // such a statement is its own autocommit, as it would be after waiting its turn. Within a
  // transaction (another request's, held across awaits) it must wait, or it would join it.
  runPreparedQueriesImmediately(db, (text, parameters) => {
    if (!sqlite.open || sqlite.inTransaction) return undefined;
    try {
      const statement = statements.prepare(text);
      if (statement.reader) return { rows: statement.all(parameters) };
      const { changes, lastInsertRowid } = statement.run(parameters);
      return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
    } catch (error) {
      throw translateDatabaseError(error);
    }
  });
  const database = describe(db, 'sqlite', undefined, async (work) => {
    durableWork += 1;
    try {
      return await work();
    } finally {
      durableWork -= 1;
    }
  });
  try {
    await applyMigrations(db, 'sqlite');
  } catch (error) {
    await database.close();
    throw error;
  }
  const busyTimeoutMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? REQUEST_BUSY_TIMEOUT_MS));
  sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
  return database;
}

/** The same dialect, telling `trace` of each query its compiler writes. */
function reportingCompiles(dialect: Dialect, trace: SqliteTrace): Dialect {
  return {
    createDriver: () => dialect.createDriver(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler() {
      const compiler = dialect.createQueryCompiler();
      return {
        compileQuery(node, queryId) {
          const compiled = compiler.compileQuery(node, queryId);
          trace.compiled(compiled.sql);
          return compiled;
        },
      };
    },
  };
}

async function openPostgres(options: {
  postgresUrl: string;
  schema?: string;
  poolSize?: number;
  onError: (error: Error) => void;
}): Promise<SqlDatabase> {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new Error(`"${options.schema}" is not a schema name this site uses (a-z, 0-9, _)`);
  }
  // Loaded only here: a site on SQLite never loads the PostgreSQL driver (a quicker start).
  const { default: postgres } = await import('pg');
  const postgresTypes = postgresTypesOf(postgres.types);
  const settings = [`-c statement_timeout=${POSTGRES_STATEMENT_TIMEOUT_MS}`];
  if (options.schema !== undefined) settings.push(`-c search_path=${options.schema}`);
  const openPool = (forRequests: boolean) => {
    const pool = new postgres.Pool({
      connectionString: options.postgresUrl,
      max: forRequests ? (options.poolSize ?? POSTGRES_POOL_SIZE) : 1,
      connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: POSTGRES_IDLE_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: POSTGRES_KEEPALIVE_DELAY_MS,
      // Migrations may rebuild a large table: no client-side limit for them (see migrate.ts).
      ...(forRequests ? { query_timeout: POSTGRES_QUERY_TIMEOUT_MS } : {}),
      options: settings.join(' '),
      types: postgresTypes,
    });
    if (forRequests) discardClientsThatTimedOut(pool, POSTGRES_SILENCE_BACKOFF_MS);
    // node-postgres reports a connection that breaks on the pool while it is idle, and on the client
    // itself while it is checked out (Kysely holds one for each query): with no listener there, the
    // process would crash. The query in flight fails on its own (and becomes a 503); the broken
    // client is dropped from the pool when it is released.
    pool.on('error', options.onError);
    pool.on('connect', (client) => client.on('error', options.onError));
    const db = new Kysely<Schema>({ dialect: withUnavailableErrors(new PostgresDialect({ pool })) });
    // Kysely ends the pool only if it ever ran a query; a pool that never did is ended here.
    const close = async () => {
      await db.destroy();
      if (!pool.ending) await pool.end();
    };
    return { db, close };
  };

  const migrations = openPool(false);
  try {
    await applyMigrations(migrations.db, 'postgres');
  } finally {
    await migrations.close();
  }
  const requests = openPool(true);
  return describe(requests.db, 'postgres', requests.close);
}

const TIMED_OUT = Symbol('query timed out');
const BORN = Symbol('silences before this connection was made');
type WatchedClient = pg.PoolClient & { [TIMED_OUT]?: boolean; [BORN]?: number };

/**
 * Kysely checks a client out per query and releases it with `release()`. A client whose query hit
 * query_timeout still waits for that query's answer, so it is released as broken (`release(true)`),
 * which ends it; the pool opens a fresh one when needed. For `backoffMs` after such a timeout, no
 * client is handed out at all (see POSTGRES_SILENCE_BACKOFF_MS). The idle connections made before
 * the silence most likely lead to the same silent host (a failover leaves them behind): each is
 * ended when next checked out, and a fresh one made in its place.
 */
function discardClientsThatTimedOut(pool: pg.Pool, backoffMs: number): void {
  let silentUntil = 0;
  let silences = 0;
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  // Only the promise form, Kysely's, is watched; a callback caller gets the pool's own behaviour.
  pool.connect = ((...args: unknown[]) => {
    if (args.length > 0) return connect(...args);
    if (Date.now() < silentUntil) {
      return Promise.reject(new Error('Query read timeout: the database did not answer a moment ago'));
    }
    const checkOut = async (): Promise<WatchedClient> => {
      const client = (await connect()) as WatchedClient;
      if (client[BORN] === undefined) {
        client[BORN] = silences;
        watch(client);
      } else if (client[BORN] < silences) {
        client.release(true);
        return checkOut();
      }
      return client;
    };
    return checkOut();
  }) as typeof pool.connect;

  function watch(client: WatchedClient) {
    const query = client.query.bind(client) as (...queryArgs: unknown[]) => unknown;
    (client as { query: unknown }).query = (...queryArgs: unknown[]) => {
      const result = query(...queryArgs);
      if (!(result instanceof Promise)) return result;
      return result.catch((error: unknown) => {
        if (error instanceof Error && error.message === 'Query read timeout') {
          client[TIMED_OUT] = true;
          silentUntil = Date.now() + backoffMs;
          silences += 1;
        }
        throw error;
      });
    };
    const release = client.release.bind(client);
    client.release = (destroy?: Error | boolean) => release(destroy ?? client[TIMED_OUT] === true);
  }
}

function describe(
  db: Kysely<Schema>,
  dialect: SqlDialect,
  destroy: () => Promise<void> = () => db.destroy(),
  // PostgreSQL commits every write durably (synchronous_commit is left on).
  durably: SqlDatabase['durably'] = (work) => work(),
): SqlDatabase {
  let closed: Promise<void> | undefined;
  return {
    db,
    dialect,
    durably,
    async isHealthy() {
      try {
        await sql`SELECT 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    close() {
      closed ??= destroy();
      return closed;
    },
  };
}
