import { describe, expect, it } from 'vitest';
import { describeUserAgent, maskAddress } from '../../src/auth/session-labels.js';

describe('describeUserAgent', () => {
  it.each([
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0',
      'Firefox on Windows',
    ],
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
      'Safari on iPhone',
    ],
    [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
      'Safari on macOS',
    ],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
      'Chrome on Windows',
    ],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87',
      'Edge on Windows',
    ],
    [
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36',
      'Chrome on Android',
    ],
    [
      'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36',
      'Samsung Internet on Android',
    ],
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.153 Mobile/15E148 Safari/604.1',
      'Chrome on iPhone',
    ],
    [
      'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15',
      'Firefox on iPad',
    ],
    [
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0',
      'Opera on Linux',
    ],
    [
      'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
      'Chrome on ChromeOS',
    ],
  ])('names %j as %j', (userAgent, expected) => {
    expect(describeUserAgent(userAgent)).toBe(expected);
  });

  it('says what it can of a User-Agent it only half knows, and never guesses', () => {
    expect(describeUserAgent('Mozilla/5.0 (X11; Linux x86_64) SomeNewBrowser/1.0')).toBe(
      'A browser on Linux',
    );
    expect(describeUserAgent('Mozilla/5.0 Firefox/128.0')).toBe('Firefox');
    expect(describeUserAgent('curl/8.5.0')).toBe('Unknown browser');
    expect(describeUserAgent('')).toBe('Unknown browser');
    expect(describeUserAgent(null)).toBe('Unknown browser');
    expect(describeUserAgent(undefined)).toBe('Unknown browser');
  });
});

describe('maskAddress', () => {
  it('keeps the first two octets of an IPv4 address, however it is written', () => {
    expect(maskAddress('203.0.113.7')).toBe('203.0.x.x');
    expect(maskAddress('::ffff:198.51.100.23')).toBe('198.51.x.x');
  });

  it('keeps the first two groups of an IPv6 address, shorthand expanded', () => {
    expect(maskAddress('2001:db8:85a3::8a2e:370:7334')).toBe('2001:db8:x:x:x:x:x:x');
    expect(maskAddress('2001:DB8::1')).toBe('2001:db8:x:x:x:x:x:x');
    expect(maskAddress('fe80::1%eth0')).toBe('fe80:0:x:x:x:x:x:x');
    expect(maskAddress('::1')).toBe('0:0:x:x:x:x:x:x');
  });

  it('says "Unknown address" for anything that is not an address, never echoing it', () => {
    expect(maskAddress(null)).toBe('Unknown address');
    expect(maskAddress('')).toBe('Unknown address');
    expect(maskAddress('<script>alert(1)</script>')).toBe('Unknown address');
  });
});
