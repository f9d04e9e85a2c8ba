import { createHash, randomBytes } from 'node:crypto';
import type { Channel } from '../mfa/provider.js';

/**
 * API keys (issue 13): what another application sends as `Authorization: Bearer <key>` to use the
 * verification API. A key is 256 random bits behind a prefix that says what it is (a key pasted
 * into a chat or a repository is recognisable, and secret scanners can match it) and where it
 * works (`kh_live_` in production, `kh_test_` elsewhere). Only its SHA-256 is kept: a copy of the
 * database lets no one call the API.
 */

export const LIVE_KEY_PREFIX = 'kh_live_';
export const TEST_KEY_PREFIX = 'kh_test_';
/** 32 random bytes in base64url, without padding. */
const KEY_RANDOM_CHARS = 43;
/** How much of the random part the admin list shows, after the prefix, to tell keys apart. */
const HINT_RANDOM_CHARS = 4;
export const KEY_NAME_MAX_LENGTH = 60;

/** A key as the site keeps it: never the key itself. */
export interface ApiKey {
  id: number;
  name: string;
  /** The prefix and the first characters of the key (`kh_live_AbCd`), for the admin list. */
  hint: string;
  /** The channels this key may send codes by. */
  channels: Channel[];
  createdAt: Date;
  /** The admin who created it; null once that account is gone. */
  createdBy: number | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiKey {
  name: string;
  keyHash: string;
  hint: string;
  channels: Channel[];
  createdBy: number | null;
}

/** Backends: src/stores/sql/api-key-store.ts (SQLite, PostgreSQL). */
export interface ApiKeyStore {
  create(key: NewApiKey): Promise<ApiKey>;
  /** The key whose SHA-256 this is, revoked or not (the caller tells a revoked key apart). */
  findByHash(keyHash: string): Promise<ApiKey | null>;
  findById(id: number): Promise<ApiKey | null>;
  /** Every key, the newest first. */
  list(): Promise<ApiKey[]>;
  /** Revokes a key; true only for the one call that revoked it. */
  revoke(id: number): Promise<boolean>;
  /** Records a use, when the last one recorded is older than `unlessSince` (one write a minute, not one a request). */
  touch(id: number, at: Date, unlessSince: Date): Promise<void>;
}

/** A new key: shown once to the admin who made it, then only its digest exists. */
export function generateApiKey(isProduction: boolean): { key: string; keyHash: string; hint: string } {
  const prefix = isProduction ? LIVE_KEY_PREFIX : TEST_KEY_PREFIX;
  const key = prefix + randomBytes(32).toString('base64url');
  return { key, keyHash: hashApiKey(key), hint: key.slice(0, prefix.length + HINT_RANDOM_CHARS) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Whether a string has the shape of a key of this site (either prefix), before any lookup. */
export function looksLikeApiKey(candidate: string): boolean {
  return new RegExp(`^kh_(live|test)_[A-Za-z0-9_-]{${KEY_RANDOM_CHARS}}$`).test(candidate);
}
