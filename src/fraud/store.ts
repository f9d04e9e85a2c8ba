import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';

/**
 * The durable facts the fraud guard needs beyond its short-lived counters: which numbers have
 * completed a code (and for which accounts), and what happened per country and hour. Asynchronous,
 * so a shared backend can implement it later; the SQLite one answers at once.
 */
export type SendingEvent =
  | 'sent'
  /** A code entered right (the operator's "codes verified"). */
  | 'verified'
  /** A number that completed a code, counted once per UTC day: the breaker's history. */
  | 'verified_number'
  | `refused:${string}`
  | `flagged:${string}`;

export interface SendingCount {
  country: string;
  event: SendingEvent;
  count: number;
}

export interface SendingStore {
  /** Whether any account completed a code to this number at or after `since`. */
  isVerifiedNumber(phone: string, since: Date): Promise<boolean>;
  /** Whether this account has ever completed a code to this number (it has shown it holds the phone). */
  hasAccountVerified(phone: string, userId: number): Promise<boolean>;
  /**
   * Records a code to this number completed by this account. `firstToday` is true for the
   * number's first completed code of the UTC day, so the breaker's history counts numbers, not codes.
   */
  markVerified(phone: string, userId: number): Promise<{ firstToday: boolean }>;
  countEvent(country: string, event: SendingEvent): Promise<void>;
  /** The highest count of `event` in one UTC day for the country, over the days from `since` to now. */
  highestDailyCount(country: string, event: SendingEvent, since: Date): Promise<number>;
  /** Every country's counts per event since `since` (whole hours). */
  countsSince(since: Date): Promise<SendingCount[]>;
}

const HOUR_MS = 60 * 60_000;
const DAY_MS = 24 * HOUR_MS;
const KEPT_HOURS = 15 * 24;

export const hourOf = (date: Date) => Math.floor(date.getTime() / HOUR_MS);

export function createSqliteSendingStore(db: Db, clock: Clock): SendingStore {
  const selectVerifiedSince = db.prepare(
    'SELECT 1 FROM verified_numbers WHERE phone_e164 = ? AND last_verified_at >= ?',
  );
  const selectLastVerified = db.prepare('SELECT last_verified_at FROM verified_numbers WHERE phone_e164 = ?');
  const selectAccountVerified = db.prepare(
    'SELECT 1 FROM verified_number_accounts WHERE phone_e164 = ? AND user_id = ?',
  );
  const upsertAccountVerified = db.prepare(
    `INSERT INTO verified_number_accounts (phone_e164, user_id, first_verified_at, last_verified_at)
     VALUES (?, ?, ?, ?)
     ON CONFLICT (phone_e164, user_id) DO UPDATE SET last_verified_at = excluded.last_verified_at`,
  );
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

  const markVerifiedAt = db.transaction((phone: string, userId: number, now: number) => {
    const last = selectLastVerified.get(phone) as { last_verified_at: number } | undefined;
    upsertVerified.run(phone, now, now);
    upsertAccountVerified.run(phone, userId, now, now);
    const today = Math.floor(now / DAY_MS);
    return { firstToday: last === undefined || Math.floor(last.last_verified_at / DAY_MS) !== today };
  });

  return {
    async isVerifiedNumber(phone, from) {
      return selectVerifiedSince.get(phone, from.getTime()) !== undefined;
    },
    async hasAccountVerified(phone, userId) {
      return selectAccountVerified.get(phone, userId) !== undefined;
    },
    async markVerified(phone, userId) {
      const now = clock.now().getTime();
      // One transaction: of two codes to one number completed at once, only one is the day's first.
      return markVerifiedAt(phone, userId, now);
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
