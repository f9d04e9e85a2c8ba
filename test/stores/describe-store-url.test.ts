import { describe, expect, it } from 'vitest';
import { describeStoreUrl } from '../../src/stores/index.js';

describe('a store URL in the log', () => {
  it.each([
    [
      'postgres://keyhole:S3cret@db.example.org:5432/keyhole',
      'postgres://keyhole:***@db.example.org:5432/keyhole',
    ],
    [
      'postgres://keyhole@db.example.org/keyhole?password=S3cret',
      'postgres://keyhole:***@db.example.org/keyhole',
    ],
    [
      'postgres://db.example.org/keyhole?sslmode=verify-full&sslpassword=S3cret',
      'postgres://:***@db.example.org/keyhole',
    ],
    ['rediss://default:S3cret@cache.example.org:6380', 'rediss://default:***@cache.example.org:6380'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
  ])('shows %s as %s, never the password', (url, shown) => {
    expect(describeStoreUrl(url)).toBe(shown);
    expect(describeStoreUrl(url)).not.toContain('S3cret');
  });

  it('says nothing of a URL it cannot read', () => {
    expect(describeStoreUrl('not a url S3cret')).toBe('an unreadable URL');
  });
});
