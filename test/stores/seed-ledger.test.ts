import { createSqlAdminSeedLedger } from '../../src/stores/sql/seed-ledger.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeAdminSeedLedgerContract } from './contracts/seed-ledger.js';

for (const backend of sqlBackends()) {
  describeAdminSeedLedgerContract(
    backend.name,
    async () => {
      const sql = await backend.open();
      const peer = await sql.openPeer();
      return {
        ledger: createSqlAdminSeedLedger(sql.database),
        peer: createSqlAdminSeedLedger(peer),
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
