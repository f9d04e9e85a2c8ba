import { describe, expect, it } from 'vitest';
import { toSafeReturnPath } from '../../src/http/safe-redirect.js';

describe('toSafeReturnPath', () => {
  it.each([
    ['/admin', '/admin'],
    ['/account?tab=1', '/account?tab=1'],
    ['/admin/../account', '/account'],
  ])('keeps the same-site path %j', (input, expected) => {
    expect(toSafeReturnPath(input)).toBe(expected);
  });

  it.each([
    'https://evil.example/',
    '//evil.example',
    '/\\evil.example',
    '/..//evil.example/phish',
    '/.//evil.example/x',
    '/%2e%2e//evil.example',
    '/a/../..//evil.example',
    'javascript:alert(1)',
    '/\tadmin',
    '/login',
    '/verify',
    '',
    'x'.repeat(600),
  ])('falls back for %j', (input) => {
    // Threat: an open redirect that turns our login page into a phishing springboard.
    expect(toSafeReturnPath(input, '/fallback')).toBe('/fallback');
  });

  it('falls back for anything that is not a string', () => {
    expect(toSafeReturnPath(['/admin'], '/fallback')).toBe('/fallback');
    expect(toSafeReturnPath(undefined, '/fallback')).toBe('/fallback');
  });
});
