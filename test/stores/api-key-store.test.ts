import { createSqlApiKeyStore } from '../../src/stores/sql/api-key-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeApiKeyStoreContract } from './contracts/api-key-store.js';

for (const backend of sqlBackends()) {
  describeApiKeyStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      return {
        store: createSqlApiKeyStore(sql.database, clock),
        peer: createSqlApiKeyStore(peer, clock),
        clock,
        async createAccount(name, options = {}) {
          const user = await users.create({
            username: name,
            passwordHash: 'hash',
            phone: '+12025550152',
            preferredChannel: 'sms',
          });
          if (options.admin && !(await users.setAdmin(name, true))) throw new Error('not made an admin');
          return user!.id;
        },
        async deleteAccount(id) {
          const outcome = await users.deleteAccount(id);
          if (outcome !== 'deleted') throw new Error(`the account was not deleted: ${outcome}`);
        },
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
