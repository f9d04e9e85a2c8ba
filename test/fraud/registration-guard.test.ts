import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFraudGuard, type FraudGuard } from '../../src/fraud/index.js';
import { createMemoryRateLimitStore } from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlSendingStore } from '../../src/stores/sql/sending-store.js';
import { createTestClock } from '../helpers/clock.js';
import { fraudConfigFrom } from '../helpers/fraud.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

// Fictional numbers only: +1 202 555 01xx.
const PHONE = '+12025550143';
const ADDRESS = '203.0.113.70';

describe('the registration guard, when a sign-up fails on its way', () => {
  // Threat: a sign-up that made nothing keeping the address's hourly allowance (5) or a place
  // among the number's accounts (3) until their windows end.
  let sql: TestSqlDatabase;
  let guard: FraudGuard;
  let failures: string[];

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    const clock = createTestClock();
    failures = [];
    const audit = createSqlAuditLog(sql.database, clock);
    guard = createFraudGuard({
      limits: createMemoryRateLimitStore(clock),
      clock,
      config: fraudConfigFrom(),
      audit,
      logger: createLogger('silent'),
      store: createSqlSendingStore(sql.database, clock),
      async accountsWithPhone() {
        const failure = failures.shift();
        if (failure) throw new Error(failure);
        return 0;
      },
    });
  });
  afterEach(() => sql.close());

  const reserve = (phone = PHONE) => guard.registrations.reserveRegistration({ clientKey: ADDRESS, phone });

  it('hands back the allowance and the number’s place when the accounts cannot be counted', async () => {
    failures.push('the database is away', 'the database is away');
    await expect(reserve()).rejects.toThrow('the database is away');
    await expect(reserve()).rejects.toThrow('the database is away');
    // Three sign-ups with the number in flight at once: none of the failed two holds a place.
    const admissions = [await reserve(), await reserve(), await reserve()];
    expect(admissions.map((admission) => admission.allowed)).toEqual([true, true, true]);
    // And the address's 5 an hour: 3 in flight, 2 more with other numbers, then refused.
    const more = [
      await reserve('+12025550144'),
      await reserve('+12025550145'),
      await reserve('+12025550146'),
    ];
    expect(more.map((admission) => admission.allowed)).toEqual([true, true, false]);
  });
});
