import { createSqlFactorStore } from '../../src/stores/sql/factor-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeFactorStoreContract } from './contracts/factor-store.js';

for (const backend of sqlBackends()) {
  describeFactorStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      return {
        store: createSqlFactorStore(sql.database, clock),
        peer: createSqlFactorStore(peer, clock),
        clock,
        async createAccount(name) {
          const user = await users.create({
            username: name,
            passwordHash: 'hash',
            phone: '+12025550150',
            preferredChannel: 'sms',
          });
          return user!.id;
        },
        async deleteAccount(id) {
          if ((await users.deleteAccount(id)) !== 'deleted') throw new Error('the account was not deleted');
        },
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
