import { createQueryId, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Schema } from './schema.js';

/** Stands for one of the query's values while it is built; swapped for the real value on each run. */
class Placeholder {
  constructor(readonly name: string) {}
  // A build that computes with a value (`id + 1`, a template string) would bake one answer into
  // the SQL for every run: it fails here instead.
  [Symbol.toPrimitive](): never {
    throw new Error(`prepareQuery: "${this.name}" is used in a computation, not as a parameter`);
  }
}

/**
 * What a value may be on each run: one SQL parameter. An array (for IN), undefined (which the
 * builder would have left out of a SET) or an object would make a query other than the one
 * Kysely built, so they are refused.
 */
function checkedValue(name: string, value: unknown): unknown {
  const type = typeof value;
  if (value === null || type === 'string' || type === 'number' || type === 'bigint' || type === 'boolean') {
    return value;
  }
  throw new TypeError(`prepareQuery: "${name}" must be a string, number, bigint, boolean or null`);
}

/**
 * Runs a compiled statement at once, synchronously, or answers undefined when it must take its
 * turn through Kysely instead (see openSqlite in database.ts). Errors come out translated.
 */
export type ImmediateRunner = (
  sql: string,
  parameters: readonly unknown[],
) => QueryResult<unknown> | undefined;

const immediateRunners = new WeakMap<Kysely<Schema>, ImmediateRunner>();

/**
 * Lets prepared queries on `db` skip Kysely's executor when `runner` can run them at once: on
 * SQLite, Kysely's way to the one connection (a connection provider, a mutex, promises) cost more
 * than the statement itself on every page (issue 10).
 */
export function runPreparedQueriesImmediately(db: Kysely<Schema>, runner: ImmediateRunner): void {
  immediateRunners.set(db, runner);
}

export interface PreparedQuery<Values, Row> {
  /** Runs the query with these values. */
  run(values: Values): Promise<QueryResult<Row>>;
  /** The first row, or undefined. */
  first(values: Values): Promise<Row | undefined>;
}

/**
 * A query Kysely builds and compiles once, then runs with new values each time. Building and
 * compiling cost more than running the statement itself on SQLite (a profile of the signed-in
 * page put Kysely's builder and compiler at a tenth of its CPU), and the queries that every page
 * makes (its session, its account) have one shape whatever the values. The SQL is the same text
 * Kysely would write for both dialects; only the values change.
 *
 * `build` gets stand-ins for the values; each must reach the query as a plain parameter (a
 * comparison, a value to insert or set), which is checked here, once: a stand-in Kysely did not
 * pass through as a parameter, or one computed with, throws at once instead of running the wrong
 * SQL. `build` must not branch on a value (`id === null ? ... : ...`): it runs once, with stand-ins.
 */
export function prepareQuery<Values extends Record<string, unknown>, Row>(
  db: Kysely<Schema>,
  build: (values: Values) => Compilable<Row>,
): PreparedQuery<Values, Row> {
  const used = new Set<string>();
  const standIns = new Proxy({} as Values, {
    get(_target, name) {
      if (typeof name !== 'string') return undefined;
      used.add(name);
      return new Placeholder(name);
    },
  });
  const compiled = build(standIns).compile();
  const passedThrough = new Set<string>();
  const parameters = compiled.parameters.map((parameter) => {
    if (parameter instanceof Placeholder) passedThrough.add(parameter.name);
    return parameter;
  });
  for (const name of used) {
    if (!passedThrough.has(name)) {
      throw new Error(`prepareQuery: "${name}" is not a plain parameter of: ${compiled.sql}`);
    }
  }

  const run = (values: Values): Promise<QueryResult<Row>> => {
    let bound: unknown[];
    try {
      bound = parameters.map((parameter) =>
        parameter instanceof Placeholder ? checkedValue(parameter.name, values[parameter.name]) : parameter,
      );
      const result = immediateRunners.get(db)?.(compiled.sql, bound);
      if (result) return Promise.resolve(result as QueryResult<Row>);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return db.executeQuery<Row>({
      query: compiled.query,
      queryId: createQueryId(),
      sql: compiled.sql,
      parameters: bound,
    });
  };
  return {
    run,
    first: async (values) => (await run(values)).rows[0],
  };
}
