import { createSqlSendingStore } from '../../src/stores/sql/sending-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeSendingStoreContract } from './contracts/sending-store.js';

for (const backend of sqlBackends()) {
  describeSendingStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      let accounts = 0;
      return {
        store: createSqlSendingStore(sql.database, clock),
        peer: createSqlSendingStore(peer, clock),
        clock,
        newAccount: async () => {
          const user = await users.create({
            username: `user${(accounts += 1)}`,
            passwordHash: 'x',
            phone: '+12025550142',
            preferredChannel: 'sms',
          });
          return user!.id;
        },
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
