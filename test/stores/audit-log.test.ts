import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeAuditLogContract } from './contracts/audit-log.js';

for (const backend of sqlBackends()) {
  describeAuditLogContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      let accounts = 0;
      return {
        log: createSqlAuditLog(sql.database, clock),
        peer: createSqlAuditLog(peer, clock),
        clock,
        async createUserId() {
          accounts += 1;
          const user = await users.create({
            username: `user${accounts}`,
            passwordHash: 'not-a-real-hash',
            phone: '+12025550142',
            preferredChannel: 'sms',
          });
          return user!.id;
        },
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
