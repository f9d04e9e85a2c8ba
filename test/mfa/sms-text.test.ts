import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { GSM7_SEGMENT_LENGTH, createCodeTexts, gsm7Length } from '../../src/mfa/sms-text.js';

describe('the text of a code message', () => {
  const texts = createCodeTexts({ siteName: 'Keyhole', publicHost: 'keyhole.example' });

  it('names the site and ends with the origin-bound line browsers read (WebOTP)', () => {
    expect(texts.sms('login', '123456')).toBe('Keyhole code: 123456\n\n@keyhole.example #123456');
    expect(texts.sms('admin', '123456')).toBe('Keyhole admin code: 123456\n\n@keyhole.example #123456');
  });

  it('puts a provider’s placeholder in once, on the origin-bound line', () => {
    expect(texts.smsTemplate('login', '{CODE}')).toBe(
      'Keyhole code (do not share it):\n\n@keyhole.example #{CODE}',
    );
  });

  it('fits one GSM-7 segment with an 8-digit code and a long realistic host, in both forms', () => {
    const host = 'verify.accounts.eu-west-1.keyhole-identity-platform.example.co.uk';
    const long = createCodeTexts({ siteName: 'Keyhole', publicHost: host });
    for (const text of [long.sms('admin', '12345678'), long.smsTemplate('admin', '12345678')]) {
      expect(gsm7Length(text)).not.toBeNull();
      expect(gsm7Length(text)!).toBeLessThanOrEqual(GSM7_SEGMENT_LENGTH);
    }
  });

  it('counts GSM-7 septets: extension characters twice, and anything else needs UCS-2', () => {
    expect(gsm7Length('Keyhole code: 1')).toBe(15);
    expect(gsm7Length('{x}')).toBe(5);
    expect(gsm7Length('ключ')).toBeNull();
  });

  it('refuses, at start, a PUBLIC_URL whose host would push a code message past one segment', () => {
    const host = `${'a'.repeat(60)}.${'b'.repeat(60)}.example`;
    expect(() => loadConfig({ PUBLIC_URL: `https://${host}` })).toThrow(
      /PUBLIC_URL: its host is \d+ characters too long for a code to fit one text message/,
    );
    expect(loadConfig({ PUBLIC_URL: 'https://keyhole.example/' }).publicHost).toBe('keyhole.example');
  });

  it('words a code of the verification API apart: not a Keyhole code, no origin-bound line, one placeholder', () => {
    const texts = createCodeTexts({ siteName: 'Keyhole', publicHost: 'keyhole.example' });
    const sms = texts.sms('api', '12345678');
    expect(sms).toBe(
      'Your verification code: 12345678\n\nSent by Keyhole for another service. Do not share it.',
    );
    expect(sms).not.toContain('@keyhole.example');
    expect(sms).not.toContain('Keyhole code');
    expect(texts.smsTemplate('api', '{CODE}').split('{CODE}')).toHaveLength(2);
    expect(gsm7Length(sms)).toBeLessThanOrEqual(GSM7_SEGMENT_LENGTH);
    expect(texts.spokenIntro('api')).toBe('Your verification code, from Keyhole for another service, is');
  });
});
