/**
 * The durable facts the fraud guard needs beyond its short-lived counters: which numbers have
 * completed a code (and for which accounts), and what happened per country and hour. Backends:
 * src/stores/sql/sending-store.ts (SQLite, PostgreSQL).
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
   * Records a code to this number completed by this account (null: by a caller of the verification
   * API, which is no account: only the number is recorded). `firstToday` is true for the number's
   * first completed code of the UTC day, so the breaker's history counts numbers, not codes.
   */
  markVerified(phone: string, userId: number | null): Promise<{ firstToday: boolean }>;
  countEvent(country: string, event: SendingEvent): Promise<void>;
  /** The highest count of `event` in one UTC day for the country, over the days from `since` to now. */
  highestDailyCount(country: string, event: SendingEvent, since: Date): Promise<number>;
  /** Every country's counts per event since `since` (whole hours). */
  countsSince(since: Date): Promise<SendingCount[]>;
}

const HOUR_MS = 60 * 60_000;
export const hourOf = (date: Date) => Math.floor(date.getTime() / HOUR_MS);
