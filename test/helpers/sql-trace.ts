import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlDatabase, type SqlDatabase } from '../../src/stores/sql/database.js';

/** What the database did while one piece of work ran. */
export interface SqlWork {
  /** Every statement SQLite ran, with its values written in, in order. */
  ran: string[];
  /** Every query Kysely built and compiled (none, when the work uses only prepared queries). */
  compiled: string[];
}

/** The statements of some work, by what they do to which table. */
export interface SqlWorkByTable {
  /** Reads by the table they read first (`FROM "table"`): how many of each. */
  reads: Record<string, number>;
  /** Inserts, updates and deletes by the table they change. */
  writes: Record<string, number>;
  /** `PRAGMA ...`, `BEGIN`, `COMMIT` and anything else, as run. */
  other: string[];
  /** Reads and writes run more than once with the very same values (the same row asked twice). */
  repeated: string[];
}

/** A SQLite file with the real migrations, whose statements (and Kysely's compiles) can be recorded. */
export interface TracedSqliteDatabase {
  database: SqlDatabase;
  /** Runs `work`, recording only what the database does meanwhile. */
  record(work: () => Promise<unknown>): Promise<SqlWork>;
  close(): Promise<void>;
}

export async function openTracedSqliteDatabase(): Promise<TracedSqliteDatabase> {
  const folder = mkdtempSync(join(tmpdir(), 'keyhole-traced-'));
  let recording: SqlWork | null = null;
  const database = await openSqlDatabase({
    sqlitePath: join(folder, 'app.db'),
    trace: {
      ran: (statement) => recording?.ran.push(statement),
      compiled: (statement) => recording?.compiled.push(statement),
    },
  });
  return {
    database,
    async record(work) {
      const recorded: SqlWork = { ran: [], compiled: [] };
      recording = recorded;
      try {
        await work();
      } finally {
        recording = null;
      }
      return recorded;
    },
    async close() {
      await database.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

const WRITE = /^\s*(?:insert into|update|delete from)\s+"(\w+)"/i;
const READ = /^\s*select\b[\s\S]*?\bfrom\s+"(\w+)"/i;

export function byTable(ran: readonly string[]): SqlWorkByTable {
  const summary: SqlWorkByTable = { reads: {}, writes: {}, other: [], repeated: [] };
  const seen = new Set<string>();
  for (const statement of ran) {
    const written = WRITE.exec(statement)?.[1];
    const read = written === undefined ? READ.exec(statement)?.[1] : undefined;
    if (written !== undefined) summary.writes[written] = (summary.writes[written] ?? 0) + 1;
    else if (read !== undefined) summary.reads[read] = (summary.reads[read] ?? 0) + 1;
    else {
      summary.other.push(statement);
      continue;
    }
    if (seen.has(statement)) summary.repeated.push(statement);
    seen.add(statement);
  }
  return summary;
}
