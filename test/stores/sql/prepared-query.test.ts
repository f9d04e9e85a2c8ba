import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlDatabase } from '../../../src/stores/sql/database.js';
import { prepareQuery } from '../../../src/stores/sql/prepared-query.js';
import { insertAlice, sqlBackends, type TestSqlDatabase } from '../../helpers/sql.js';

// The queries every page makes are built and compiled once (src/stores/sql/prepared-query.ts).
for (const backend of sqlBackends()) {
  describe.skipIf(backend.skip)(`a prepared query on ${backend.name}`, () => {
    let handle: TestSqlDatabase;
    let database: SqlDatabase;
    beforeEach(async () => {
      handle = await backend.open();
      database = handle.database;
      await insertAlice(database);
      await database.db
        .insertInto('users')
        .values({
          id: 2,
          username: 'bob',
          username_key: 'bob',
          password_hash: 'y',
          phone_e164: '+12025550143',
          preferred_channel: 'voice',
          created_at: 0,
        })
        .execute();
    });
    afterEach(() => handle.close());

    it('is built once and answers each run with that run’s own values', async () => {
      const { db } = database;
      let builds = 0;
      const byIdAndChannel = prepareQuery(db, ({ id, channel }: { id: number; channel: 'sms' | 'voice' }) => {
        builds += 1;
        return db
          .selectFrom('users')
          .select('username')
          .where('id', '=', id)
          .where('preferred_channel', '=', channel);
      });
      expect(await byIdAndChannel.first({ id: 1, channel: 'sms' })).toEqual({ username: 'alice' });
      expect(await byIdAndChannel.first({ id: 2, channel: 'voice' })).toEqual({ username: 'bob' });
      expect(await byIdAndChannel.first({ id: 2, channel: 'sms' })).toBeUndefined();
      expect(builds).toBe(1);
    });

    it('writes with its values and reports the rows it changed', async () => {
      const { db } = database;
      const rename = prepareQuery(db, ({ id, username }: { id: number; username: string }) =>
        db.updateTable('users').set({ username }).where('id', '=', id),
      );
      expect(Number((await rename.run({ id: 2, username: 'robert' })).numAffectedRows)).toBe(1);
      expect(Number((await rename.run({ id: 99, username: 'nobody' })).numAffectedRows)).toBe(0);
      const names = await db.selectFrom('users').select('username').orderBy('id').execute();
      expect(names.map((row) => row.username)).toEqual(['alice', 'robert']);
    });

    it('keeps the constants written into the query', async () => {
      const { db } = database;
      const smsUserById = prepareQuery(db, ({ id }: { id: number }) =>
        db.selectFrom('users').select('username').where('id', '=', id).where('preferred_channel', '=', 'sms'),
      );
      expect(await smsUserById.first({ id: 1 })).toEqual({ username: 'alice' });
      expect(await smsUserById.first({ id: 2 })).toBeUndefined();
    });

    it('refuses, when built, a value that is computed with rather than passed', () => {
      const { db } = database;
      expect(() =>
        prepareQuery(db, ({ id }: { id: number }) =>
          db
            .selectFrom('users')
            .select('username')
            .where('id', '=', (id as unknown as number) + 1),
        ),
      ).toThrow(/"id" is used in a computation/);
    });

    it('refuses, when run, a value that is not one SQL parameter', async () => {
      const { db } = database;
      const byId = prepareQuery(db, ({ id }: { id: number }) =>
        db.selectFrom('users').select('username').where('id', '=', id),
      );
      for (const bad of [undefined, [1, 2], { id: 1 }]) {
        await expect(byId.first({ id: bad as unknown as number })).rejects.toThrow(/"id" must be a string/);
      }
      expect(await byId.first({ id: 1 })).toEqual({ username: 'alice' });
    });

    it('never joins a transaction another request holds open: it waits for its end', async () => {
      const { db } = database;
      const nameOf = prepareQuery(db, ({ id }: { id: number }) =>
        db.selectFrom('users').select('username').where('id', '=', id),
      );
      const rename = prepareQuery(db, ({ id, username }: { id: number; username: string }) =>
        db.updateTable('users').set({ username }).where('id', '=', id),
      );
      let rollBack!: () => void;
      const heldOpen = new Promise<void>((resolve) => (rollBack = resolve));
      let begun!: () => void;
      const inTransaction = new Promise<void>((resolve) => (begun = resolve));
      const transaction = db.transaction().execute(async (trx) => {
        await trx.updateTable('users').set({ username: 'uncommitted' }).where('id', '=', 1).execute();
        begun();
        await heldOpen;
        throw new Error('rolled back');
      });
      await inTransaction;
      const read = nameOf.first({ id: 1 });
      const write = rename.run({ id: 2, username: 'robert' });
      rollBack();
      await expect(transaction).rejects.toThrow('rolled back');
      // Neither saw nor shared the rolled-back transaction's work.
      expect(await read).toEqual({ username: 'alice' });
      expect(Number((await write).numAffectedRows)).toBe(1);
      const names = await db.selectFrom('users').select('username').orderBy('id').execute();
      expect(names.map((row) => row.username)).toEqual(['alice', 'robert']);
    });

    it('refuses, when built, a value that does not reach the query as a parameter', () => {
      const { db } = database;
      expect(() =>
        prepareQuery(db, ({ id }: { id: number }) => {
          void id;
          return db.selectFrom('users').select('username');
        }),
      ).toThrow(/"id" is not a plain parameter/);
    });
  });
}
