import { describe, expect, it } from 'vitest';
import { formatTime } from '../../src/http/time-format.js';
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
