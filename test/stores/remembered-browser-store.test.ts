import { createSqlRememberedBrowserStore } from '../../src/stores/sql/remembered-browser-store.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { describeRememberedBrowserStoreContract } from './contracts/remembered-browser-store.js';

for (const backend of sqlBackends()) {
  describeRememberedBrowserStoreContract(
    backend.name,
    async () => {
      let database: import('../../src/stores/sql/database.js').SqlDatabase | undefined;
      const pair = await openSqlStorePair(backend, (db, clock) => {
        database ??= db;
        return createSqlRememberedBrowserStore(db, clock);
      });
      return {
        ...pair,
        async storedDigests() {
          const rows = await database!.db.selectFrom('remembered_browsers').select('token_hash').execute();
          return rows.map((row) => row.token_hash).sort();
        },
      };
    },
    { skip: backend.skip },
  );
}
