import { createSqlIdempotencyStore } from '../../src/stores/sql/idempotency-store.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { describeIdempotencyStoreContract } from './contracts/idempotency-store.js';

for (const backend of sqlBackends()) {
  describeIdempotencyStoreContract(
    backend.name,
    async () => {
      // Two connections to one database, as two processes or instances have.
      const sql = await openSqlStorePair(backend, createSqlIdempotencyStore);
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
