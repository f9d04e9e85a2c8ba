import type { Clock } from '../../clock.js';
import { hourOf, type SendingStore } from '../../fraud/store.js';
import type { SqlDatabase } from './database.js';

/** Hours of sending_hourly kept: the breaker looks back 14 days, the Sending view one. */
const KEPT_HOURS = 15 * 24;

export function createSqlSendingStore({ db }: SqlDatabase, clock: Clock): SendingStore {
  let sweptHour = -1;

  return {
    async isVerifiedNumber(phone) {
      const row = await db
        .selectFrom('verified_numbers')
        .select('phone_e164')
        .where('phone_e164', '=', phone)
        .executeTakeFirst();
      return row !== undefined;
    },
    async markVerified(phone) {
      const now = clock.now().getTime();
      await db
        .insertInto('verified_numbers')
        .values({ phone_e164: phone, first_verified_at: now, last_verified_at: now })
        .onConflict((conflict) =>
          conflict
            .column('phone_e164')
            .doUpdateSet((eb) => ({ last_verified_at: eb.ref('excluded.last_verified_at') })),
        )
        .execute();
    },
    async countEvent(country, event) {
      const hour = hourOf(clock.now());
      // Once an hour (per process) is enough to keep the table at about 15 days of rows.
      if (hour !== sweptHour) {
        sweptHour = hour;
        await db
          .deleteFrom('sending_hourly')
          .where('hour', '<', hour - KEPT_HOURS)
          .execute();
      }
      // One statement: counts from racing requests (or instances) add up, never overwrite.
      await db
        .insertInto('sending_hourly')
        .values({ country, event, hour, count: 1 })
        .onConflict((conflict) =>
          conflict
            .columns(['country', 'event', 'hour'])
            // Qualified: PostgreSQL finds a bare "count" ambiguous next to excluded.count.
            .doUpdateSet((eb) => ({ count: eb('sending_hourly.count', '+', eb.lit(1)) })),
        )
        .execute();
    },
    async highestDailyCount(country, event, from) {
      // Whole UTC days: the first day counts from its midnight.
      const firstHour = Math.floor(hourOf(from) / 24) * 24;
      const days = await db
        .selectFrom('sending_hourly')
        .select((eb) => eb.fn.sum<number>('count').as('total'))
        .where('country', '=', country)
        .where('event', '=', event)
        .where('hour', '>=', firstHour)
        // A literal 24: better-sqlite3 binds a parameter as a REAL, and hour / 24.0 is no day.
        .groupBy((eb) => eb('hour', '/', eb.lit(24)))
        .execute();
      return days.reduce((highest, day) => Math.max(highest, Number(day.total)), 0);
    },
    async countsSince(from) {
      const rows = await db
        .selectFrom('sending_hourly')
        .select((eb) => ['country', 'event', eb.fn.sum<number>('count').as('count')])
        .where('hour', '>=', hourOf(from))
        .groupBy(['country', 'event'])
        .orderBy('country')
        .orderBy('event')
        .execute();
      return rows.map((row) => ({ country: row.country, event: row.event, count: Number(row.count) }));
    },
  };
}
