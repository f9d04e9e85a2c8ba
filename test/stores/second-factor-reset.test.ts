import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqlFactorStore } from '../../src/stores/sql/factor-store.js';
import { createSqlRememberedBrowserStore } from '../../src/stores/sql/remembered-browser-store.js';
import { createSqlSecondFactorReset } from '../../src/stores/sql/second-factor-reset.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { SqlDatabase } from '../../src/stores/sql/database.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends, type TestSqlDatabase } from '../helpers/sql.js';

/**
 * An admin's reset of an account's second factors (src/factors/second-factor-reset.ts): apps,
 * passkeys, recovery codes and remembered browsers go, the default factor is the phone again, and
 * another account keeps all of its own.
 */
for (const backend of sqlBackends()) {
  describe.skipIf(backend.skip)(`SecondFactorReset: ${backend.name}`, () => {
    const clock = createTestClock();
    let sql: TestSqlDatabase;
    let database: SqlDatabase;

    beforeEach(async () => {
      sql = await backend.open();
      database = sql.database;
    });
    afterEach(() => sql.close());

    async function accountWithEverything(username: string): Promise<number> {
      const users = createSqlUserStore(database, clock);
      const user = (await users.create({
        username,
        passwordHash: 'hash',
        phone: '+12025550150',
        preferredChannel: 'sms',
      }))!;
      const factors = createSqlFactorStore(database, clock);
      await factors.add(
        { kind: 'totp', userId: user.id, label: 'Phone app', sealedSecret: 'sealed', lastStep: null },
        { maxPerKind: 5 },
      );
      await factors.add(
        {
          kind: 'passkey',
          userId: user.id,
          label: 'Laptop',
          credentialId: `credential-${username}`,
          publicKey: 'key',
          signCount: 0,
          transports: ['internal'],
          userVerified: true,
        },
        { maxPerKind: 5 },
      );
      await database.db
        .insertInto('recovery_codes')
        .values(
          ['a', 'b', 'c'].map((code) => ({
            user_id: user.id,
            code_hmac: `${username}-${code}`,
            created_at: 0,
            used_at: code === 'a' ? 1 : null,
          })),
        )
        .execute();
      await createSqlRememberedBrowserStore(database, clock).add(
        {
          userId: user.id,
          tokenHash: `digest-${username}`,
          label: 'Firefox on Windows',
          expiresAt: new Date(clock.now().getTime() + 60_000),
        },
        { maxPerAccount: 10 },
      );
      await users.setDefaultFactor(user.id, 'totp');
      return user.id;
    }

    const countFor = async (table: 'factors' | 'recovery_codes' | 'remembered_browsers', userId: number) => {
      const rows = await database.db
        .selectFrom(table)
        .select('user_id')
        .where('user_id', '=', userId)
        .execute();
      return rows.length;
    };

    it('removes the account’s apps, passkeys, recovery codes and remembered browsers, and its default factor', async () => {
      const ada = await accountWithEverything('ada');
      const bo = await accountWithEverything('bo');
      const reset = createSqlSecondFactorReset(database);

      expect(await reset.removeAllSecondFactors(ada)).toEqual({
        factors: 2,
        recoveryCodes: 3,
        rememberedBrowsers: 1,
      });
      for (const table of ['factors', 'recovery_codes', 'remembered_browsers'] as const) {
        expect(await countFor(table, ada)).toBe(0);
        expect(await countFor(table, bo)).toBeGreaterThan(0);
      }
      const users = createSqlUserStore(database, clock);
      expect((await users.findById(ada))!.defaultFactor).toBeNull();
      expect((await users.findById(bo))!.defaultFactor).toBe('totp');
      // Again: nothing left, and no error.
      expect(await reset.removeAllSecondFactors(ada)).toEqual({
        factors: 0,
        recoveryCodes: 0,
        rememberedBrowsers: 0,
      });
    });
  });
}
