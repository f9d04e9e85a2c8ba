/**
 * Dates as pages show them ("Sat, 21 Nov 2026, 10:15"), always in UTC. Building an
 * Intl.DateTimeFormat is slow (Date#toLocaleString builds one on every call: 13 % of the account
 * page's CPU), so each of the few shapes is built once, here, and reused, and keeps what it wrote.
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

/**
 * How many formatted dates each shape keeps. A page shows the same few instants on every view (an
 * account's start, its previous login), and Intl's format costs a few microseconds each: two of
 * them were 2 % of the signed-in page's CPU under load (issue 10). Past this many, the shape's
 * memory starts again, so no visitor can make it grow.
 */
export const FORMATTED_DATES_KEPT = 2_000;

/** One shape: its formatter and the texts it made, by the instant's milliseconds. */
function shape(options: TimeFormatOptions) {
  const formatter = formatterFor(options);
  const made = new Map<number, string>();
  return (date: Date): string => {
    const time = date.getTime();
    let text = made.get(time);
    if (text === undefined) {
      // An invalid date throws here, as it always did, and is never kept.
      text = formatter.format(date);
      if (made.size >= FORMATTED_DATES_KEPT) made.clear();
      made.set(time, text);
    }
    return text;
  };
}

const LONG = shape({});
const LONG_WITH_SECONDS = shape({ seconds: true });
const SHORT = shape({ short: true });
const SHORT_WITH_SECONDS = shape({ short: true, seconds: true });

/** The date in UTC, without the zone's name (views/partials/time.ejs adds "UTC"). */
export function formatTime(date: Date, options: TimeFormatOptions = {}): string {
  const format = options.short
    ? options.seconds
      ? SHORT_WITH_SECONDS
      : SHORT
    : options.seconds
      ? LONG_WITH_SECONDS
      : LONG;
  return format(date);
}
