import { createSqlApiVerificationStore } from '../../src/stores/sql/api-verification-store.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { describeApiVerificationStoreContract } from './contracts/api-verification-store.js';

for (const backend of sqlBackends()) {
  describeApiVerificationStoreContract(
    backend.name,
    async () => {
      // Two connections to one database, as two processes or instances have.
      const sql = await openSqlStorePair(backend, createSqlApiVerificationStore);
      return {
        store: sql.store,
        peer: sql.peer,
        clock: sql.clock,
        createKeyId: sql.addApiKey,
        close: sql.close,
      };
    },
    { skip: backend.skip },
  );
}
