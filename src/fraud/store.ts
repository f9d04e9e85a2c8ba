import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';

/**
 * The durable facts the fraud guard needs beyond its short-lived counters: which numbers have
 * completed a code, and what happened per country and hour. Asynchronous, so a shared backend
 * can implement it later; the SQLite one answers at once.
 */
export type SendingEvent = 'sent' | 'verified' | `refused:${string}` | `flagged:${string}`;

export interface SendingCount {
  country: string;
  event: SendingEvent;
  count: number;
}

export interface SendingStore {
  isVerifiedNumber(phone: string): Promise<boolean>;
  markVerified(phone: string): Promise<void>;
  countEvent(country: string, event: SendingEvent): Promise<void>;
  /** The highest count of `event` in one UTC day for the country, over the days from `since` to now. */
  highestDailyCount(country: string, event: SendingEvent, since: Date): Promise<number>;
  /** Every country's counts per event since `since` (whole hours). */
  countsSince(since: Date): Promise<SendingCount[]>;
}

const HOUR_MS = 60 * 60_000;
const KEPT_HOURS = 15 * 24;

export const hourOf = (date: Date) => Math.floor(date.getTime() / HOUR_MS);

export function createSqliteSendingStore(db: Db, clock: Clock): SendingStore {
  const selectVerified = db.prepare('SELECT 1 FROM verified_numbers WHERE phone_e164 = ?');
  const upsertVerified = db.prepare(
    `INSERT INTO verified_numbers (phone_e164, first_verified_at, last_verified_at) VALUES (?, ?, ?)
     ON CONFLICT (phone_e164) DO UPDATE SET last_verified_at = excluded.last_verified_at`,
  );
  const upsertCount = db.prepare(
    `INSERT INTO sending_hourly (country, event, hour, count) VALUES (?, ?, ?, 1)
     ON CONFLICT (country, event, hour) DO UPDATE SET count = count + 1`,
  );
  const highestDaily = db.prepare(
    `SELECT COALESCE(MAX(total), 0) AS highest FROM (
       SELECT SUM(count) AS total FROM sending_hourly
       WHERE country = ? AND event = ? AND hour >= ?
       GROUP BY hour / 24)`,
  );
  const since = db.prepare(
    `SELECT country, event, SUM(count) AS count FROM sending_hourly WHERE hour >= ?
     GROUP BY country, event ORDER BY country, event`,
  );
  const sweep = db.prepare('DELETE FROM sending_hourly WHERE hour < ?');
  let sweptHour = -1;

  return {
    async isVerifiedNumber(phone) {
      return selectVerified.get(phone) !== undefined;
    },
    async markVerified(phone) {
      const now = clock.now().getTime();
      upsertVerified.run(phone, now, now);
    },
    async countEvent(country, event) {
      const hour = hourOf(clock.now());
      // Once an hour is enough to keep the table at about 15 days of rows.
      if (hour !== sweptHour) {
        sweptHour = hour;
        sweep.run(hour - KEPT_HOURS);
      }
      upsertCount.run(country, event, hour);
    },
    async highestDailyCount(country, event, from) {
      // Whole UTC days: the first day counts from its midnight.
      const firstHour = Math.floor(hourOf(from) / 24) * 24;
      return (highestDaily.get(country, event, firstHour) as { highest: number }).highest;
    },
    async countsSince(from) {
      return since.all(hourOf(from)) as SendingCount[];
    },
  };
}
