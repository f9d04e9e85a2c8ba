import { SqlSessionStore } from '../../src/stores/sql/session-store.js';
import { createTestClock } from '../helpers/clock.js';
import { sqlBackends } from '../helpers/sql.js';
import { describeSessionStoreContract } from './contracts/session-store.js';

for (const backend of sqlBackends()) {
  describeSessionStoreContract(
    backend.name,
    async () => {
      const clock = createTestClock();
      const sql = await backend.open();
      const peer = await sql.openPeer();
      const db = sql.database.db;
      return {
        store: new SqlSessionStore(sql.database, clock),
        peer: new SqlSessionStore(peer, clock),
        clock,
        async tombstones() {
          const rows = await db.selectFrom('session_tombstones').selectAll().orderBy('sid').execute();
          return rows.map((row) => ({ sid: row.sid, expiresAt: row.expires_at }));
        },
        countSessions: async () => (await db.selectFrom('sessions').select('sid').execute()).length,
        close: () => sql.close(),
      };
    },
    { skip: backend.skip },
  );
}
