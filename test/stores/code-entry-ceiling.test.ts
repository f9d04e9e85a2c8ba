import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { CONTRACT_CEILING, describeCodeEntryCeilingContract } from './contracts/code-entry-ceiling.js';

for (const backend of sqlBackends()) {
  describeCodeEntryCeilingContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      let accounts = 0;
      return {
        ceiling: createSqlCodeEntryCeiling(sql.database, clock, CONTRACT_CEILING),
        peer: createSqlCodeEntryCeiling(peer, clock, CONTRACT_CEILING),
        async addAccount() {
          accounts += 1;
          const user = await users.create({
            username: `user${accounts}`,
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
