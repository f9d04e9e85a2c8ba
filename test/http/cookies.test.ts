import { describe, expect, it } from 'vitest';
import { readCookie, readCookieValues } from '../../src/http/cookies.js';

describe('reading cookies', () => {
  it('takes a name padded with spaces and tabs, as RFC 6265 has it', () => {
    expect(readCookie(' \t__Host-mfa.sid=abc \t; other=1', '__Host-mfa.sid')).toBe('abc');
    expect(readCookieValues('a=1;  \t__Host-mfa.csrf=xyz', '__Host-mfa.csrf')).toEqual(['xyz']);
  });

  it.each(['\u00a0', '\ufeff', '\u000b', '\u000c', '\u2028'])(
    'never takes a name padded with other white space (%j) for the __Host- cookie',
    (pad) => {
      // Threat: a sibling subdomain sets "<pad>__Host-x", which a browser allows (it has no prefix),
      // and a wide trim would read it as the real __Host- cookie.
      const header = `${pad}__Host-mfa.presession=planted`;
      expect(readCookie(header, '__Host-mfa.presession')).toBeUndefined();
      expect(readCookieValues(header, '__Host-mfa.presession')).toEqual([]);
    },
  );
});
