/**
 * Dates as pages show them ("Sat, 21 Nov 2026, 10:15"), always in UTC. Building an
 * Intl.DateTimeFormat is slow (Date#toLocaleString builds one on every call: 13 % of the account
 * page's CPU), so each of the few shapes is built once, here, and reused.
 */
export interface TimeFormatOptions {
  /** Without the weekday (tables). */
  short?: boolean;
  /** With the seconds. */
  seconds?: boolean;
}

const formatterFor = ({ short = false, seconds = false }: TimeFormatOptions) =>
  new Intl.DateTimeFormat('en-GB', {
    timeZone: 'UTC',
    weekday: short ? undefined : 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: seconds ? '2-digit' : undefined,
  });

const LONG = formatterFor({});
const LONG_WITH_SECONDS = formatterFor({ seconds: true });
const SHORT = formatterFor({ short: true });
const SHORT_WITH_SECONDS = formatterFor({ short: true, seconds: true });

/** The date in UTC, without the zone's name (views/partials/time.ejs adds "UTC"). */
export function formatTime(date: Date, options: TimeFormatOptions = {}): string {
  const formatter = options.short
    ? options.seconds
      ? SHORT_WITH_SECONDS
      : SHORT
    : options.seconds
      ? LONG_WITH_SECONDS
      : LONG;
  return formatter.format(date);
}
