import { createSqlAdminSeedLedger } from '../../src/stores/sql/seed-ledger.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeAdminSeedLedgerContract } from './contracts/seed-ledger.js';

for (const backend of sqlBackends()) {
  describeAdminSeedLedgerContract(
    backend.name,
    async () => {
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, createTestClock());
      return {
        ledger: createSqlAdminSeedLedger(sql.database),
        peer: createSqlAdminSeedLedger(peer),
        async addAccount(username) {
          const user = await users.create({
            username,
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
