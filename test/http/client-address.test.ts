import { describe, expect, it } from 'vitest';
import { clientKeyOf } from '../../src/http/client-address.js';

// Documentation ranges only: 192.0.2.0/24 and 2001:db8::/32.
describe('clientKeyOf: the key per-address limits count a client by', () => {
  it('keeps an IPv4 address as it is', () => {
    expect(clientKeyOf('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKeyOf('192.0.2.8')).not.toBe(clientKeyOf('192.0.2.7'));
  });

  it('reads an IPv4-mapped IPv6 address as the IPv4 client it names', () => {
    expect(clientKeyOf('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKeyOf('::ffff:c000:207')).toBe('192.0.2.7');
  });

  it('counts IPv6 clients by their /64: fifteen addresses of one /64 are one client', () => {
    const keys = new Set(
      Array.from({ length: 15 }, (_, i) => clientKeyOf(`2001:db8:1:2:${(i + 1).toString(16)}::${i}`)),
    );
    expect(keys.size).toBe(1);
    expect(clientKeyOf('2001:db8:1:2::1')).toBe(clientKeyOf('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'));
    expect(clientKeyOf('2001:db8:1:3::1')).not.toBe(clientKeyOf('2001:db8:1:2::1'));
  });
});
