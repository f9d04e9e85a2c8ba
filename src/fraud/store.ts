/**
 * The durable facts the fraud guard needs beyond its short-lived counters: which numbers have
 * completed a code, and what happened per country and hour. Backends: src/stores/sql/sending-store.ts
 * (SQLite, PostgreSQL).
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
export const hourOf = (date: Date) => Math.floor(date.getTime() / HOUR_MS);
