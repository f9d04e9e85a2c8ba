import { createSqlRecoveryCodeStore } from '../../src/stores/sql/recovery-code-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeRecoveryCodeStoreContract } from './contracts/recovery-code-store.js';

for (const backend of sqlBackends()) {
  describeRecoveryCodeStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      return {
        store: createSqlRecoveryCodeStore(sql.database, clock),
        peer: createSqlRecoveryCodeStore(peer, clock),
        clock,
        async createAccount(name) {
          const user = await users.create({
            username: name,
            passwordHash: 'hash',
            phone: '+12025550151',
            preferredChannel: 'sms',
          });
          return user!.id;
        },
        async deleteAccount(id) {
          if ((await users.deleteAccount(id)) !== 'deleted') throw new Error('the account was not deleted');
        },
        storedRows: (userId) =>
          sql.database.db
            .selectFrom('recovery_codes')
            .select(['code_hmac', 'used_at'])
            .where('user_id', '=', userId)
            .execute(),
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
