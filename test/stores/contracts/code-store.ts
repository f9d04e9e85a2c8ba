import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CodeStore } from '../../../src/mfa/code-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every CodeStore backend promises (src/mfa/code-store.ts): a code is good once, for its
 * number and scope, until it expires or is voided, and nothing stored gives it away.
 */
export interface CodeStoreHarness {
  /** Made with the hash key "secret-key". */
  codes: CodeStore;
  /** The same codes reached another way (a second connection), with the same key. */
  peer: CodeStore;
  /** The same codes with another hash key, as a site with another SESSION_SECRET would have. */
  withOtherKey: CodeStore;
  clock: TestClock;
  /** Everything the backend keeps about codes, as text (what a stolen copy of it would show). */
  storedText(): Promise<string>;
  close(): Promise<void>;
}

const TO = '+12025550142';

export function describeCodeStoreContract(
  backend: string,
  open: () => Promise<CodeStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`CodeStore contract: ${backend}`, () => {
    let harness: CodeStoreHarness;
    let codes: CodeStore;

    beforeEach(async () => {
      harness = await open();
      codes = harness.codes;
    });
    afterEach(() => harness.close());

    it('keeps only a keyed hash: the code is nowhere in what is stored', async () => {
      // Threat: a copy of the database handing out live codes.
      const issued = await codes.issue({ to: TO, scope: 'login', digits: 8, ttlMs: 300_000 });
      const stored = await harness.storedText();
      expect(stored).not.toContain(issued.code);
      expect(stored).toMatch(/[0-9a-f]{64}/);
    });

    it('makes a code of the asked length that expires after its lifetime', async () => {
      const issued = await codes.issue({ to: TO, scope: 'login', digits: 8, ttlMs: 300_000 });
      expect(issued.code).toMatch(/^\d{8}$/);
      expect(issued.expiresAt).toEqual(new Date(harness.clock.now().getTime() + 300_000));
    });

    it('accepts a code once, for its number and scope only, on either connection', async () => {
      const issued = await codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 300_000 });
      const check = (overrides: Partial<{ to: string; scope: 'login' | 'admin'; code: string }>) =>
        harness.peer.check({ id: issued.id, to: TO, scope: 'login', code: issued.code, ...overrides });
      expect(await check({ scope: 'admin' })).toBe('invalid');
      expect(await check({ to: '+12025550143' })).toBe('invalid');
      expect(await check({ code: issued.code === '000000' ? '000001' : '000000' })).toBe('invalid');
      expect(await check({})).toBe('valid');
      expect(await codes.check({ id: issued.id, to: TO, scope: 'login', code: issued.code })).toBe('invalid');
    });

    it('says expired after its lifetime, and invalid once voided', async () => {
      const first = await codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 60_000 });
      const second = await codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 60_000 });
      await codes.void(second.id);
      expect(await codes.check({ id: second.id, to: TO, scope: 'login', code: second.code })).toBe('invalid');
      harness.clock.advance(60_000);
      expect(await codes.check({ id: first.id, to: TO, scope: 'login', code: first.code })).toBe('expired');
    });

    it('knows nothing of an unknown id, and voiding one is harmless', async () => {
      expect(await codes.check({ id: 'no-such-code', to: TO, scope: 'login', code: '123456' })).toBe(
        'invalid',
      );
      await codes.void('no-such-code');
    });

    it('cannot be checked with another key', async () => {
      const issued = await codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 300_000 });
      expect(
        await harness.withOtherKey.check({ id: issued.id, to: TO, scope: 'login', code: issued.code }),
      ).toBe('invalid');
    });

    it('lets exactly one of 10 parallel checks of the right code through', async () => {
      // Threat: the same code sent to two instances at once signing in twice.
      const issued = await codes.issue({ to: TO, scope: 'login', digits: 6, ttlMs: 300_000 });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? codes : harness.peer).check({
            id: issued.id,
            to: TO,
            scope: 'login',
            code: issued.code,
          }),
        ),
      );
      expect(results.filter((result) => result === 'valid')).toHaveLength(1);
      expect(results.filter((result) => result === 'invalid')).toHaveLength(9);
    });
  });
}
