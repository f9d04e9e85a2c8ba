import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * What FACTOR_ENCRYPTION_KEY protects: authenticator-app secrets, sealed with AES-256-GCM, and
 * recovery codes, kept only as HMAC-SHA256 digests. Each use has its own key derived by HKDF, so
 * no key ever serves two purposes, and a copy of the database without the key opens nothing.
 */
export interface FactorSecrets {
  /** Seals a secret for the database: "v1.<iv>.<tag>.<ciphertext>", base64url; `context` binds it to its row's owner. */
  seal(plaintext: Buffer, context: string): string;
  /** Opens what seal made with the same context; throws on a wrong key, context or tampered text. */
  open(sealed: string, context: string): Buffer;
  /** The digest a recovery code is stored and looked up by (hex). */
  recoveryCodeDigest(userId: number, normalisedCode: string): string;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;

function derive(master: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `keyhole:${purpose}`, KEY_BYTES));
}

export function createFactorSecrets(masterKey: Buffer): FactorSecrets {
  if (masterKey.length !== KEY_BYTES) throw new Error('the factor key must be 32 bytes');
  const sealKey = derive(masterKey, 'totp-secret-seal');
  const recoveryKey = derive(masterKey, 'recovery-code-hmac');
  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
      cipher.setAAD(Buffer.from(context));
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const parts = [iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64url'));
      return ['v1', ...parts].join('.');
    },
    open(sealed, context) {
      const [version, iv, tag, ciphertext] = sealed.split('.');
      if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('not a sealed secret');
      const decipher = createDecipheriv('aes-256-gcm', sealKey, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
    },
    recoveryCodeDigest(userId, normalisedCode) {
      return createHmac('sha256', recoveryKey).update(`${userId}:${normalisedCode}`).digest('hex');
    },
  };
}

/** Where a development key is kept: beside the SQLite database, so both go (or stay) together. */
export function developmentKeyPath(databasePath: string): string {
  return join(dirname(databasePath), 'factor-encryption.key');
}

/**
 * Outside production, without FACTOR_ENCRYPTION_KEY: a key made once and kept in a file beside the
 * database (readable by its owner only), so apps enrolled on a laptop keep working across restarts.
 * `created` says whether it was made just now (server.ts warns either way).
 */
export function loadOrCreateDevelopmentKey(path: string): { key: Buffer; created: boolean } {
  if (existsSync(path)) {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
    if (key.length !== KEY_BYTES) throw new Error(`${path} does not hold a 64-hex-character key`);
    return { key, created: false };
  }
  mkdirSync(dirname(path), { recursive: true });
  const key = randomBytes(KEY_BYTES);
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { key, created: true };
}
