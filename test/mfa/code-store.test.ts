import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/open.js';
import { createSqliteCodeStore, generateNumericCode, type CodeStore } from '../../src/mfa/code-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';

describe('the app’s own code store', () => {
  let folder: string;
  let db: Db;
  let clock: TestClock;
  let codes: CodeStore;
  const TO = '+12025550142';

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'codes-'));
    db = openDatabase(join(folder, 'app.db'));
    clock = createTestClock();
    codes = createSqliteCodeStore(db, clock, 'secret-key');
  });
  afterEach(() => {
    db.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('keeps only a keyed hash: the code is nowhere in the database', () => {
    // Threat: a copy of the database handing out live codes.
    const issued = codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 300_000 });
    const dump = JSON.stringify(db.prepare('SELECT * FROM issued_codes').all());
    expect(dump).not.toContain(issued.code);
    expect(dump).toMatch(/[0-9a-f]{64}/);
  });

  it('accepts a code once, for its number and scope only', () => {
    const issued = codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 300_000 });
    expect(codes.check({ id: issued.id, to: TO, scope: 'admin', code: issued.code })).toBe('invalid');
    expect(codes.check({ id: issued.id, to: '+12025550143', scope: 'login', code: issued.code })).toBe(
      'invalid',
    );
    expect(codes.check({ id: issued.id, to: TO, scope: 'login', code: issued.code })).toBe('valid');
    expect(codes.check({ id: issued.id, to: TO, scope: 'login', code: issued.code })).toBe('invalid');
  });

  it('says expired after its lifetime, and invalid once voided', () => {
    const first = codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 60_000 });
    const second = codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 60_000 });
    codes.void(second.id);
    expect(codes.check({ id: second.id, to: TO, scope: 'login', code: second.code })).toBe('invalid');
    clock.advance(60_000);
    expect(codes.check({ id: first.id, to: TO, scope: 'login', code: first.code })).toBe('expired');
  });

  it('cannot be checked with another store’s key', () => {
    const issued = codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 300_000 });
    const otherKey = createSqliteCodeStore(db, clock, 'another-key');
    expect(otherKey.check({ id: issued.id, to: TO, scope: 'login', code: issued.code })).toBe('invalid');
  });

  it('makes codes of the asked length with every digit in use', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i += 1) {
      const code = generateNumericCode(8);
      expect(code).toMatch(/^\d{8}$/);
      for (const digit of code) seen.add(digit);
    }
    expect(seen.size).toBe(10);
  });
});
