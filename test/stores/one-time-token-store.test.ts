import { createSqlOneTimeTokenStore } from '../../src/stores/sql/one-time-token-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeOneTimeTokenStoreContract } from './contracts/one-time-token-store.js';

for (const backend of sqlBackends()) {
  describeOneTimeTokenStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const users = createSqlUserStore(sql.database, clock);
      return {
        store: createSqlOneTimeTokenStore(sql.database, clock),
        peer: createSqlOneTimeTokenStore(peer, clock),
        clock,
        async createAccount(name) {
          const user = await users.create({
            username: name,
            passwordHash: 'hash',
            phone: '+12025550150',
            preferredChannel: 'sms',
          });
          return user!.id;
        },
        async storedDigests() {
          const rows = await sql.database.db.selectFrom('one_time_tokens').select('token_hash').execute();
          return rows.map((row) => row.token_hash).sort();
        },
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
