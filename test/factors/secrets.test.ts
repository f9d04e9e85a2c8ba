import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createFactorSecrets,
  developmentKeyPath,
  loadOrCreateDevelopmentKey,
} from '../../src/factors/secrets.js';

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);

describe('factor secrets', () => {
  const secrets = createFactorSecrets(KEY);

  it('seals a secret that only the same key and context open, and never the same text twice', () => {
    const secret = Buffer.from('twenty bytes secret!');
    const sealed = secrets.seal(secret, 'user:1');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain(secret.toString('base64url'));
    expect(secrets.seal(secret, 'user:1')).not.toBe(sealed);
    expect(secrets.open(sealed, 'user:1')).toEqual(secret);
    // Moved to another account's row, it opens for no one.
    expect(() => secrets.open(sealed, 'user:2')).toThrow();
    expect(() => createFactorSecrets(OTHER_KEY).open(sealed, 'user:1')).toThrow();
    const [version, iv, tag, body] = sealed.split('.');
    const flipped = Buffer.from(body!, 'base64url');
    flipped[0]! ^= 1;
    expect(() =>
      secrets.open([version, iv, tag, flipped.toString('base64url')].join('.'), 'user:1'),
    ).toThrow();
    expect(() => secrets.open('garbage', 'user:1')).toThrow();
  });

  it('digests a recovery code per account and per key', () => {
    const digest = secrets.recoveryCodeDigest(1, 'ABCDEFGHJKMNPQRS');
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(secrets.recoveryCodeDigest(1, 'ABCDEFGHJKMNPQRS')).toBe(digest);
    expect(secrets.recoveryCodeDigest(2, 'ABCDEFGHJKMNPQRS')).not.toBe(digest);
    expect(createFactorSecrets(OTHER_KEY).recoveryCodeDigest(1, 'ABCDEFGHJKMNPQRS')).not.toBe(digest);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => createFactorSecrets(Buffer.alloc(16))).toThrow(/32 bytes/);
  });
});

describe('the development key beside the database', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is made once, readable by its owner only, and read back at the next start', () => {
    dir = mkdtempSync(join(tmpdir(), 'factor-key-'));
    const path = developmentKeyPath(join(dir, 'data', 'app.db'));
    expect(path).toBe(join(dir, 'data', 'factor-encryption.key'));
    const first = loadOrCreateDevelopmentKey(path);
    expect(first.created).toBe(true);
    expect(first.key).toHaveLength(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8').trim()).toBe(first.key.toString('hex'));
    const second = loadOrCreateDevelopmentKey(path);
    expect(second).toEqual({ key: first.key, created: false });
  });
});
