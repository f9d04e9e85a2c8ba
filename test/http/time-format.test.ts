import { afterEach, describe, expect, it, vi } from 'vitest';
import { FORMATTED_DATES_KEPT, formatTime } from '../../src/http/time-format.js';
import { createBrowser } from '../helpers/agent.js';
import { createTestClock } from '../helpers/clock.js';
import { createTestApp, lastConsoleCode } from '../helpers/create-test-app.js';
import { expectPage, visibleText } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';

describe('formatTime (views/partials/time.ejs)', () => {
  const date = new Date('2026-11-21T10:15:30Z');

  it('writes a date as a person reads it, in UTC, in each shape the pages use', () => {
    expect(formatTime(date)).toBe('Sat, 21 Nov 2026, 10:15');
    expect(formatTime(date, { short: true })).toBe('21 Nov 2026, 10:15');
    expect(formatTime(date, { seconds: true })).toBe('Sat, 21 Nov 2026, 10:15:30');
    expect(formatTime(date, { short: true, seconds: true })).toBe('21 Nov 2026, 10:15:30');
    expect(formatTime(new Date('2026-01-01T23:59:59.999Z'))).toBe('Thu, 1 Jan 2026, 23:59');
  });

  it('writes what Date#toLocaleString wrote, without building a formatter per call', () => {
    for (const at of ['2026-02-28T00:00:00Z', '2027-07-04T12:05:00Z', '2030-12-31T23:59:00Z']) {
      const options = {
        timeZone: 'UTC',
        day: 'numeric',
        month: 'short',
        year: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
      } as const;
      expect(formatTime(new Date(at))).toBe(
        new Date(at).toLocaleString('en-GB', { ...options, weekday: 'short' }),
      );
      expect(formatTime(new Date(at), { short: true })).toBe(new Date(at).toLocaleString('en-GB', options));
    }
  });

  describe('each instant is formatted once per shape', () => {
    // Intl's format is a getter that hands out a bound function: each formatting is one lookup.
    const countFormatting = () =>
      vi.spyOn(Intl.DateTimeFormat.prototype as unknown as { readonly format: unknown }, 'format', 'get');

    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('writes a date it has written before without asking Intl again, in every shape', () => {
      const format = countFormatting();
      const seen = new Date('2031-03-09T08:07:06Z');
      const first = [
        formatTime(seen),
        formatTime(seen, { short: true }),
        formatTime(seen, { seconds: true }),
      ];
      const formatted = format.mock.calls.length;
      expect(formatted).toBe(3);
      // Another Date object for the same instant is the same text.
      const again = new Date(seen.getTime());
      expect([
        formatTime(again),
        formatTime(again, { short: true }),
        formatTime(again, { seconds: true }),
      ]).toEqual(first);
      expect(format.mock.calls.length).toBe(formatted);
      expect(first).toEqual(['Sun, 9 Mar 2031, 08:07', '9 Mar 2031, 08:07', 'Sun, 9 Mar 2031, 08:07:06']);
    });

    it('keeps a bounded number of them: a page that shows many dates cannot make the memory grow', () => {
      const start = Date.UTC(2032, 0, 1);
      const minute = 60_000;
      const first = new Date(start);
      const expected = formatTime(first);
      for (let i = 1; i <= FORMATTED_DATES_KEPT; i += 1) formatTime(new Date(start + i * minute));
      const format = countFormatting();
      // The first one was let go when the shape started again, and is simply formatted anew.
      expect(formatTime(first)).toBe(expected);
      expect(format).toHaveBeenCalledTimes(1);
      expect(formatTime(new Date(start + FORMATTED_DATES_KEPT * minute))).toBe('Fri, 2 Jan 2032, 09:20');
    });

    it('still refuses an invalid date, and keeps nothing for it', () => {
      expect(() => formatTime(new Date(Number.NaN))).toThrow(RangeError);
      expect(() => formatTime(new Date(Number.NaN))).toThrow(RangeError);
    });
  });

  it('shows the account’s dates on the account page, with the exact time for machines', async () => {
    const site = await createTestApp({ clock: createTestClock(new Date('2026-11-21T10:15:00Z')) });
    try {
      const browser = createBrowser(site.app);
      const account = await register(browser);
      await submitPassword(browser, account);
      await submitCode(browser, lastConsoleCode(site.printed));
      const page = await browser.get('/account');
      expectPage(page, 200);
      expect(visibleText(page.text)).toContain('Member since Sat, 21 Nov 2026, 10:15 UTC');
      expect(page.text).toContain('<time datetime="2026-11-21T10:15:00.000Z" data-local-time="long">');
    } finally {
      await site.close();
    }
  });
});
