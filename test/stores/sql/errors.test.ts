import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../src/stores/errors.js';
import { isDatabaseUnavailable } from '../../../src/stores/sql/errors.js';
import { sqlBackends } from '../../helpers/sql.js';

const withCode = (code: string, message = 'failed') => Object.assign(new Error(message), { code });

describe('which database failures mean "unavailable" (503) rather than a bug (500)', () => {
  it.each([
    ['SQLite: another process holds the lock', withCode('SQLITE_BUSY', 'database is locked')],
    ['SQLite: a table is locked', withCode('SQLITE_LOCKED_SHAREDCACHE')],
    ['SQLite: the disk failed', withCode('SQLITE_IOERR_WRITE')],
    ['SQLite: the disk is full', withCode('SQLITE_FULL')],
    ['SQLite: the file cannot be opened', withCode('SQLITE_CANTOPEN')],
    ['SQLite: the handle was closed', new TypeError('The database connection is not open')],
    ['PostgreSQL: the connection failed', withCode('08006')],
    [
      'PostgreSQL: the server is shutting down',
      withCode('57P01', 'terminating connection due to administrator command'),
    ],
    ['PostgreSQL: too many connections', withCode('53300', 'sorry, too many clients already')],
    [
      'PostgreSQL: a statement ran past its deadline',
      withCode('57014', 'canceling statement due to statement timeout'),
    ],
    ['PostgreSQL: a read-only standby after a failover', withCode('25006')],
    ['PostgreSQL: a deadlock, passing', withCode('40P01')],
    ['the network: connection refused', withCode('ECONNREFUSED')],
    ['the network: connection reset', withCode('ECONNRESET')],
    [
      'the network: refused on both ::1 and 127.0.0.1',
      new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]),
    ],
    ['node-postgres: the connection ended', new Error('Connection terminated unexpectedly')],
    ['node-postgres: no pooled connection in time', new Error('timeout exceeded when trying to connect')],
    ['wrapped as a cause', new Error('query failed', { cause: withCode('ECONNRESET') })],
  ])('%s: unavailable', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['SQLite: a constraint the code did not expect', withCode('SQLITE_CONSTRAINT_PRIMARYKEY')],
    ['SQLite: a syntax error', withCode('SQLITE_ERROR', 'near "SELEC": syntax error')],
    ['PostgreSQL: a unique violation', withCode('23505')],
    ['PostgreSQL: a syntax error', withCode('42601')],
    ['PostgreSQL: an undefined table', withCode('42P01')],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
  ])('%s: a bug, not unavailability', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

for (const backend of sqlBackends()) {
  describe.skipIf(backend.skip)(`errors from ${backend.name}`, () => {
    it('passes a bug through as it is: a syntax error or an unexpected constraint violation is no 503', async () => {
      const test = await backend.open();
      try {
        const { db } = test.database;
        const syntax = await sql`SELEC 1`.execute(db).catch((error: unknown) => error);
        expect(syntax).toBeInstanceOf(Error);
        expect(syntax).not.toBeInstanceOf(StoreUnavailableError);

        const row = { name: 'dana', first_listed_at: 0, last_user_id_then: 0 };
        await db.insertInto('admin_seed_names').values(row).execute();
        const duplicate = await db
          .insertInto('admin_seed_names')
          .values(row)
          .execute()
          .catch((error: unknown) => error);
        expect(duplicate).toBeInstanceOf(Error);
        expect(duplicate).not.toBeInstanceOf(StoreUnavailableError);
      } finally {
        await test.close();
      }
    });

    it('makes a query on a closed database the 503 error kind', async () => {
      const test = await backend.open();
      const peer = await test.openPeer();
      await peer.close();
      try {
        await expect(peer.db.selectFrom('users').selectAll().execute()).rejects.toSatisfy(
          isDatabaseUnavailable,
        );
        expect(await peer.isHealthy()).toBe(false);
      } finally {
        await test.close();
      }
    });
  });
}
