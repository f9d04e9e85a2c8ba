import { createSqlCodeEntryCeiling } from '../../src/stores/sql/code-entry-ceiling.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { CONTRACT_CEILING, describeCodeEntryCeilingContract } from './contracts/code-entry-ceiling.js';

for (const backend of sqlBackends()) {
  describeCodeEntryCeilingContract(
    backend.name,
    async () => {
      const sql = await openSqlStorePair(backend, (database, clock) =>
        createSqlCodeEntryCeiling(database, clock, CONTRACT_CEILING),
      );
      return { ceiling: sql.store, peer: sql.peer, addAccount: sql.addAccount, close: sql.close };
    },
    { skip: backend.skip },
  );
}
