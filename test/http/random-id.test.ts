import { describe, expect, it } from 'vitest';
import { randomId } from '../../src/http/random-id.js';

describe('random ids from the pool', () => {
  it('are base64url of the asked length, and never repeat across many refills of the pool', () => {
    const seen = new Set<string>();
    // 24-byte ids: about 170 per 4 KiB pool, so this crosses the refill many times.
    for (let i = 0; i < 20_000; i += 1) {
      const id = randomId(24);
      expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
    expect(randomId(32)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('are not all zero bytes when the pool runs out in the middle of an id', () => {
    // Drain to an odd offset, then ask for more than is left: the id comes whole from a fresh pool.
    for (let i = 0; i < 100; i += 1) randomId(37);
    const ids = Array.from({ length: 300 }, () => Buffer.from(randomId(200), 'base64url'));
    for (const bytes of ids) expect(bytes.some((byte) => byte !== 0)).toBe(true);
  });

  it('refuses a size it cannot give', () => {
    expect(() => randomId(0)).toThrow(RangeError);
    expect(() => randomId(257)).toThrow(RangeError);
    expect(() => randomId(1.5)).toThrow(RangeError);
  });
});
