import { createSqlCodeStore } from '../../src/stores/sql/code-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeCodeStoreContract } from './contracts/code-store.js';

for (const backend of sqlBackends()) {
  describeCodeStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      return {
        codes: createSqlCodeStore(sql.database, clock, 'secret-key'),
        peer: createSqlCodeStore(peer, clock, 'secret-key'),
        withOtherKey: createSqlCodeStore(peer, clock, 'another-key'),
        clock,
        storedText: async () =>
          JSON.stringify(await sql.database.db.selectFrom('issued_codes').selectAll().execute()),
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
