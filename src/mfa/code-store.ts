import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Scope } from './provider.js';

/**
 * Codes the app makes itself (console and SignalWire providers). Only a keyed hash is stored,
 * bound to the destination and scope, so neither a database dump nor a code from another scope
 * can be replayed. Backends: src/stores/sql/code-store.ts.
 */
export type CodeCheck = 'valid' | 'invalid' | 'expired';

export interface IssuedCode {
  id: string;
  code: string;
  expiresAt: Date;
}

export interface CodeStore {
  issue(request: { to: string; scope: Scope; digits: number; ttlMs: number }): Promise<IssuedCode>;
  /** A valid code is burnt in the same statement that accepts it, so it can never be used twice. */
  check(request: { id: string; to: string; scope: Scope; code: string }): Promise<CodeCheck>;
  void(id: string): Promise<void>;
}

export function generateNumericCode(digits: number): string {
  let code = '';
  for (let i = 0; i < digits; i += 1) code += String(randomInt(10));
  return code;
}

/** The keyed hash a store keeps instead of the code: it binds the code to its id, number and scope. */
export function hashIssuedCode(
  hashKey: string,
  issued: { id: string; to: string; scope: string; code: string },
): Buffer {
  return createHmac('sha256', hashKey)
    .update(`${issued.id}\n${issued.to}\n${issued.scope}\n${issued.code}`)
    .digest();
}

/** Compares a code against a stored hash in constant time. */
export function matchesIssuedCodeHash(storedHex: string, given: Buffer): boolean {
  const stored = Buffer.from(storedHex, 'hex');
  return stored.length === given.length && timingSafeEqual(stored, given);
}
