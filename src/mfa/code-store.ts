import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';
import type { Scope } from './provider.js';

/**
 * Codes the app makes itself (console and SignalWire providers). Only a keyed hash is stored,
 * bound to the destination and scope, so neither a database dump nor a code from another scope
 * can be replayed.
 */
export type CodeCheck = 'valid' | 'invalid' | 'expired';

export interface IssuedCode {
  id: string;
  code: string;
  expiresAt: Date;
}

export interface CodeStore {
  issue(request: { to: string; scope: Scope; digits: number; ttlMs: number }): IssuedCode;
  /** A valid code is burnt in the same statement that accepts it, so it can never be used twice. */
  check(request: { id: string; to: string; scope: Scope; code: string }): CodeCheck;
  void(id: string): void;
}

interface CodeRow {
  id: string;
  phone_e164: string;
  scope: string;
  code_hash: string;
  expires_at: number;
  used_at: number | null;
  voided_at: number | null;
}

const EXPIRED_ROWS_KEPT_MS = 24 * 60 * 60 * 1000;

export function generateNumericCode(digits: number): string {
  let code = '';
  for (let i = 0; i < digits; i += 1) code += String(randomInt(10));
  return code;
}

export function createSqliteCodeStore(db: Db, clock: Clock, hashKey: string): CodeStore {
  const keyed = (id: string, to: string, scope: string, code: string) =>
    createHmac('sha256', hashKey).update(`${id}\n${to}\n${scope}\n${code}`).digest();

  const insert = db.prepare(
    `INSERT INTO issued_codes (id, phone_e164, scope, code_hash, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const select = db.prepare('SELECT * FROM issued_codes WHERE id = ?');
  const burn = db.prepare('UPDATE issued_codes SET used_at = ? WHERE id = ? AND used_at IS NULL');
  const markVoid = db.prepare('UPDATE issued_codes SET voided_at = ? WHERE id = ? AND voided_at IS NULL');
  const purge = db.prepare('DELETE FROM issued_codes WHERE expires_at < ?');

  return {
    issue({ to, scope, digits, ttlMs }) {
      const now = clock.now().getTime();
      purge.run(now - EXPIRED_ROWS_KEPT_MS);
      const id = randomBytes(18).toString('base64url');
      const code = generateNumericCode(digits);
      insert.run(id, to, scope, keyed(id, to, scope, code).toString('hex'), now, now + ttlMs);
      return { id, code, expiresAt: new Date(now + ttlMs) };
    },
    check({ id, to, scope, code }) {
      const row = select.get(id) as CodeRow | undefined;
      if (!row || row.voided_at !== null || row.used_at !== null) return 'invalid';
      if (row.phone_e164 !== to || row.scope !== scope) return 'invalid';
      if (row.expires_at <= clock.now().getTime()) return 'expired';
      const stored = Buffer.from(row.code_hash, 'hex');
      const given = keyed(id, to, scope, code);
      if (stored.length !== given.length || !timingSafeEqual(stored, given)) return 'invalid';
      // Two requests racing with the same code: only the one whose update changes the row wins.
      return burn.run(clock.now().getTime(), id).changes === 1 ? 'valid' : 'invalid';
    },
    void(id) {
      markVoid.run(clock.now().getTime(), id);
    },
  };
}
