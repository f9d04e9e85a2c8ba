import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';
import { describeAuditLogContract } from './contracts/audit-log.js';

for (const backend of sqlBackends()) {
  describeAuditLogContract(
    backend.name,
    async () => {
      const sql = await openSqlStorePair(backend, createSqlAuditLog);
      return {
        log: sql.store,
        peer: sql.peer,
        clock: sql.clock,
        createUserId: sql.addAccount,
        close: sql.close,
      };
    },
    { skip: backend.skip },
  );
}
