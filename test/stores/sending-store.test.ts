import { createSqlSendingStore } from '../../src/stores/sql/sending-store.js';
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
      return {
        store: createSqlSendingStore(sql.database, clock),
        peer: createSqlSendingStore(peer, clock),
        clock,
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
