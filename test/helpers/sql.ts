import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { generateApiKey } from '../../src/api/keys.js';
import { createSqlApiKeyStore } from '../../src/stores/sql/api-key-store.js';
import { openSqlDatabase, type SqlDatabase } from '../../src/stores/sql/database.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock, type TestClock } from './clock.js';
import { TEST_DATABASE_URL } from './services.js';

/** Whether this run found PostgreSQL (asked once, in test/helpers/services-setup.ts). */
export const isPostgresAvailable = (): boolean => inject('services').postgres;

/** A database for one test, and a way to open more handles on the same data (a second instance). */
export interface TestSqlDatabase {
  database: SqlDatabase;
  /** Another connection (pool) to the same data, as a second process or instance has. */
  openPeer(): Promise<SqlDatabase>;
  /** Closes every handle and deletes the data. */
  close(): Promise<void>;
}

/** A fresh SQLite file with the real migrations, in its own temporary folder. */
export async function openTestSqliteDatabase(): Promise<TestSqlDatabase & { path: string }> {
  const folder = mkdtempSync(join(tmpdir(), 'keyhole-sql-'));
  const path = join(folder, 'app.db');
  const handles = [await openSqlDatabase({ sqlitePath: path })];
  return {
    database: handles[0]!,
    path,
    async openPeer() {
      const peer = await openSqlDatabase({ sqlitePath: path });
      handles.push(peer);
      return peer;
    },
    async close() {
      for (const handle of handles) await handle.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** Runs one statement on the test server as its superuser (creating and dropping schemas). */
export async function onTestPostgres<T>(work: (client: pg.Client) => Promise<T>, url = TEST_DATABASE_URL) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A schema name of its own for each test, so tests share one PostgreSQL and never see each other. */
export function randomSchemaName(): string {
  return `keyhole_test_${randomBytes(8).toString('hex')}`;
}

/**
 * A fresh schema on the test PostgreSQL with the real migrations; closing drops it with
 * everything in it. `url` lets a test reach the same server another way (through a proxy).
 */
export async function openTestPostgresDatabase(
  options: { url?: string; onError?: (error: Error) => void } = {},
): Promise<TestSqlDatabase & { schema: string }> {
  const schema = randomSchemaName();
  await onTestPostgres((client) => client.query(`CREATE SCHEMA ${schema}`));
  const open = () =>
    openSqlDatabase({
      postgresUrl: options.url ?? TEST_DATABASE_URL,
      schema,
      poolSize: 4,
      onError: options.onError ?? (() => undefined),
    });
  const handles: SqlDatabase[] = [];
  try {
    handles.push(await open());
  } catch (error) {
    await onTestPostgres((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    throw error;
  }
  return {
    database: handles[0]!,
    schema,
    async openPeer() {
      const peer = await open();
      handles.push(peer);
      return peer;
    },
    async close() {
      for (const handle of handles) await handle.close();
      await onTestPostgres((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    },
  };
}

export interface SqlBackend {
  name: 'sqlite' | 'postgres';
  open(): Promise<TestSqlDatabase>;
  /** True where the backend's server did not answer at the start of this run. */
  skip: boolean;
}

/** Both SQL backends, for specs written once: `for (const backend of sqlBackends()) describe.skipIf(...)`. */
export function sqlBackends(): SqlBackend[] {
  return [
    { name: 'sqlite', open: openTestSqliteDatabase, skip: false },
    { name: 'postgres', open: () => openTestPostgresDatabase(), skip: !isPostgresAvailable() },
  ];
}

/**
 * The account the domain specs send codes for (id 1, "alice", +1 202 555 0142), written straight
 * into the users table: those specs test the MFA service, not registration.
 */
export async function insertAlice(database: SqlDatabase): Promise<void> {
  await database.db
    .insertInto('users')
    .values({
      id: 1,
      username: 'alice',
      username_key: 'alice',
      password_hash: 'x',
      phone_e164: '+12025550142',
      preferred_channel: 'sms',
      created_at: 0,
    })
    .execute();
}

/**
 * A SQL store as two instances see it: built on two connections to one fresh database, with a
 * test clock, and a way to add accounts (the rows of most stores refer to one).
 */
export async function openSqlStorePair<T>(
  backend: SqlBackend,
  build: (database: SqlDatabase, clock: TestClock) => T,
): Promise<{
  store: T;
  peer: T;
  clock: TestClock;
  addAccount(): Promise<number>;
  /** A key of the verification API (the rows of its stores refer to one). */
  addApiKey(): Promise<number>;
  close(): Promise<void>;
}> {
  const clock = createTestClock();
  const sql = await backend.open();
  const peer = await sql.openPeer();
  const users = createSqlUserStore(sql.database, clock);
  const apiKeys = createSqlApiKeyStore(sql.database, clock);
  let accounts = 0;
  return {
    store: build(sql.database, clock),
    peer: build(peer, clock),
    clock,
    async addAccount() {
      accounts += 1;
      const user = await users.create({
        username: `user${accounts}`,
        passwordHash: 'not-a-real-hash',
        phone: '+12025550142',
        preferredChannel: 'sms',
      });
      if (!user) throw new Error('test account could not be created');
      return user.id;
    },
    async addApiKey() {
      const { keyHash, hint } = generateApiKey(false);
      const key = await apiKeys.create({
        name: 'test key',
        keyHash,
        hint,
        channels: ['sms'],
        createdBy: null,
      });
      return key.id;
    },
    close: () => sql.close(),
  };
}
