import { describe, expect, it } from 'vitest';
import { formatPhoneForDisplay, maskPhone, parsePhone } from '../../src/users/phone.js';

describe('parsePhone', () => {
  it.each([
    ['+1 202 555 0100', undefined, '+12025550100'],
    ['+1 (202) 555-0199', undefined, '+12025550199'],
    ['202.555.0142', 'US', '+12025550142'],
    ['020 7946 0958', 'GB', '+442079460958'],
  ])('reads %j (country %s) as %s', (input, country, e164) => {
    expect(parsePhone(input, country)).toEqual({ ok: true, e164 });
  });

  it.each([['+1 202 555'], ['+44 12'], ['+0 123 456 7890'], ['555']])(
    'refuses %j with a plain message',
    (input) => {
      const result = parsePhone(input, 'US');
      expect(result.ok).toBe(false);
    },
  );

  it('asks for a country when a national number comes without one', () => {
    expect(parsePhone('202 555 0100')).toEqual({
      ok: false,
      message: expect.stringMatching(/Choose the country/),
    });
  });
});

describe('showing phone numbers', () => {
  it('masks all but the last four digits for pages', () => {
    expect(maskPhone('+12025550100')).toBe('•••• 0100');
  });
  it('formats a number readably for the console provider', () => {
    expect(formatPhoneForDisplay('+12025550100')).toBe('+1 202 555 0100');
  });
});
