import type { Clock } from '../../clock.js';
import { hourOf, type SendingStore } from '../../fraud/store.js';
import type { SqlDatabase } from './database.js';

/** Hours of sending_hourly kept: the breaker looks back 14 days, the Sending view one. */
const KEPT_HOURS = 15 * 24;
const DAY_MS = 24 * 60 * 60_000;

export function createSqlSendingStore({ db }: SqlDatabase, clock: Clock): SendingStore {
  let sweptHour = -1;

  return {
    async isVerifiedNumber(phone, since) {
      const row = await db
        .selectFrom('verified_numbers')
        .select('phone_e164')
        .where('phone_e164', '=', phone)
        .where('last_verified_at', '>=', since.getTime())
        .executeTakeFirst();
      return row !== undefined;
    },
    async hasAccountVerified(phone, userId) {
      const row = await db
        .selectFrom('verified_number_accounts')
        .select('phone_e164')
        .where('phone_e164', '=', phone)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row !== undefined;
    },
    async markVerified(phone, userId) {
      const now = clock.now().getTime();
      const todayStarts = Math.floor(now / DAY_MS) * DAY_MS;
      // The day's first is decided by one conditional upsert, never a read then a write: it writes
      // (and returns a row) only for a new number or one last verified before today. Of two codes
      // to one number completed at once, the second then finds it verified today (PostgreSQL waits
      // for the first's row and checks the WHERE again against it). No transaction around these
      // statements: on SQLite it would hold the write lock across awaits, and another process
      // meeting it would fail at once.
      const firstToday =
        (await db
          .insertInto('verified_numbers')
          .values({ phone_e164: phone, first_verified_at: now, last_verified_at: now })
          .onConflict((conflict) =>
            conflict
              .column('phone_e164')
              .doUpdateSet((eb) => ({ last_verified_at: eb.ref('excluded.last_verified_at') }))
              .where('verified_numbers.last_verified_at', '<', todayStarts),
          )
          .returning('phone_e164')
          .executeTakeFirst()) !== undefined;
      if (!firstToday) {
        // Verified again today: the 30-day exemption runs from the latest code.
        await db
          .updateTable('verified_numbers')
          .set({ last_verified_at: now })
          .where('phone_e164', '=', phone)
          .where('last_verified_at', '<', now)
          .execute();
      }
      if (userId === null) return { firstToday };
      await db
        .insertInto('verified_number_accounts')
        .values({ phone_e164: phone, user_id: userId, first_verified_at: now, last_verified_at: now })
        .onConflict((conflict) =>
          conflict
            .columns(['phone_e164', 'user_id'])
            .doUpdateSet((eb) => ({ last_verified_at: eb.ref('excluded.last_verified_at') })),
        )
        .execute();
      return { firstToday };
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
