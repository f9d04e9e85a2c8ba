import { createSqlSendingStore } from '../../src/stores/sql/sending-store.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { describeSendingStoreContract } from './contracts/sending-store.js';

for (const backend of sqlBackends()) {
  describeSendingStoreContract(
    backend.name,
    async () => {
      const sql = await openSqlStorePair(backend, createSqlSendingStore);
      return {
        store: sql.store,
        peer: sql.peer,
        clock: sql.clock,
        newAccount: sql.addAccount,
        close: sql.close,
      };
    },
    { skip: backend.skip },
  );
}
