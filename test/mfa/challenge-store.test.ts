import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExpiredChallengesTask, type ChallengeStore } from '../../src/mfa/challenge-store.js';
import { createSqlChallengeStore } from '../../src/stores/sql/challenge-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { sqlBackends, type TestSqlDatabase } from '../helpers/sql.js';

const DAY_MS = 24 * 60 * 60_000;
const CODE_TTL_MS = 5 * 60_000;

/** What only the SQL store does (its shared rules are in test/stores/challenge-store.test.ts). */
for (const backend of sqlBackends())
  describe.skipIf(backend.skip)(`SQL challenges (${backend.name}): housekeeping`, () => {
    let sql: TestSqlDatabase;
    let clock: TestClock;
    let challenges: ChallengeStore;
    let userId: number;

    beforeEach(async () => {
      sql = await backend.open();
      clock = createTestClock();
      challenges = createSqlChallengeStore(sql.database, clock);
      const user = await createSqlUserStore(sql.database, clock).create({
        username: 'alice',
        passwordHash: 'not-a-real-hash',
        phone: '+12025550142',
        preferredChannel: 'sms',
      });
      userId = user!.id;
    });
    afterEach(() => sql.close());

    const send = (id: string) => {
      const sentAt = clock.now().getTime();
      return challenges.create({
        id,
        userId,
        scope: 'login',
        phone: '+12025550142',
        channel: 'sms',
        provider: 'console',
        sentAt,
        expiresAt: sentAt + CODE_TTL_MS,
      });
    };

    it('keeps a challenge for a day after it expires, then deletes it', async () => {
      await send('kept');
      const task = createExpiredChallengesTask({ challenges, clock });
      clock.advance(CODE_TTL_MS + DAY_MS - 1);
      expect(await task.runBatch()).toBe(0);
      expect(await challenges.findById('kept')).not.toBeNull();
      clock.advance(2);
      expect(await task.runBatch()).toBe(1);
      expect(await challenges.findById('kept')).toBeNull();
    });

    it('deletes in batches of the asked size, oldest first', async () => {
      for (const id of ['first', 'second', 'third']) {
        await send(id);
        clock.advance(1_000);
      }
      const after = new Date(clock.now().getTime() + CODE_TTL_MS);
      expect(await challenges.deleteExpired(after, 2)).toBe(2);
      expect(await challenges.findById('first')).toBeNull();
      expect(await challenges.findById('third')).not.toBeNull();
      expect(await challenges.deleteExpired(after, 2)).toBe(1);
    });
  });
