import { describe, expect, it } from 'vitest';
import { MINIMUM_REDIS_MAJOR_VERSION, redisVersionProblem } from '../../src/stores/index.js';

/** What `INFO server` starts with, for a given version. */
const serverInfo = (version: string) =>
  `# Server\r\nredis_version:${version}\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n`;

describe('the Redis a site starts on', () => {
  it('is Redis 7 or later: the rate limits name each window by its exact expiry (PEXPIRETIME)', () => {
    expect(MINIMUM_REDIS_MAJOR_VERSION).toBe(7);
    expect(redisVersionProblem(serverInfo('7.0.15'))).toBeUndefined();
    expect(redisVersionProblem(serverInfo('7.4.2'))).toBeUndefined();
    expect(redisVersionProblem(serverInfo('8.0.0'))).toBeUndefined();
  });

  it('is refused at start when older, with the version found and the one needed', () => {
    expect(redisVersionProblem(serverInfo('6.2.14'))).toMatch(
      /REDIS_URL points at Redis 6\.2\.14; Keyhole needs Redis 7 or later/,
    );
    expect(redisVersionProblem(serverInfo('5.0.7'))).toMatch(/Redis 5\.0\.7/);
  });

  it('is not refused when it does not say its version (a managed service may hide INFO fields)', () => {
    expect(redisVersionProblem('# Server\r\nredis_mode:standalone\r\n')).toBeUndefined();
    expect(redisVersionProblem('')).toBeUndefined();
  });
});
