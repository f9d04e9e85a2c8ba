import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeUserStoreContract } from './contracts/user-store.js';

for (const backend of sqlBackends()) {
  describeUserStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      return {
        store: createSqlUserStore(sql.database, clock),
        peer: createSqlUserStore(peer, clock),
        clock,
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
