import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tokenDigest, type OneTimeTokenStore } from '../../../src/account/one-time-tokens.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every OneTimeTokenStore backend promises (src/account/one-time-tokens.ts): links that work
 * once, for one purpose, until they expire or a newer one replaces them, kept only as a digest.
 */
export interface OneTimeTokenStoreHarness {
  store: OneTimeTokenStore;
  /** The same links reached another way: a second connection, as a second instance has. */
  peer: OneTimeTokenStore;
  clock: TestClock;
  /** Makes an account the tokens can belong to; returns its id. */
  createAccount(name: string): Promise<number>;
  /** Every token_hash the backend holds: to show the token itself is never stored. */
  storedDigests(): Promise<string[]>;
  close(): Promise<void>;
}

const HOUR_MS = 60 * 60_000;

export function describeOneTimeTokenStoreContract(
  backend: string,
  open: () => Promise<OneTimeTokenStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`OneTimeTokenStore contract: ${backend}`, () => {
    let harness: OneTimeTokenStoreHarness;
    let store: OneTimeTokenStore;
    let ada: number;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      ada = await harness.createAccount('ada');
    });
    afterEach(() => harness.close());

    it('issues a 256-bit token, keeps only its SHA-256, and hands it back once on either connection', async () => {
      const token = await store.issue({
        purpose: 'email_verification',
        userId: ada,
        ttlMs: HOUR_MS,
        detail: 'ada@example.com',
      });
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await harness.storedDigests()).toEqual([tokenDigest(token)]);

      const expected = {
        purpose: 'email_verification',
        userId: ada,
        detail: 'ada@example.com',
        createdAt: harness.clock.now(),
        expiresAt: new Date(harness.clock.now().getTime() + HOUR_MS),
      };
      // Looking does not use it up.
      expect(await harness.peer.peek('email_verification', token)).toEqual(expected);
      expect(await harness.peer.consume('email_verification', token)).toEqual(expected);
      expect(await store.consume('email_verification', token)).toBeNull();
      expect(await store.peek('email_verification', token)).toBeNull();
    });

    it('lets exactly one of many racing uses through', async () => {
      const token = await store.issue({ purpose: 'password_reset', userId: ada, ttlMs: HOUR_MS });
      const uses = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 ? harness.peer : store).consume('password_reset', token),
        ),
      );
      expect(uses.filter((use) => use !== null)).toHaveLength(1);
    });

    it('works only for its own purpose', async () => {
      const token = await store.issue({ purpose: 'password_reset', userId: ada, ttlMs: HOUR_MS });
      expect(await store.peek('account_deletion', token)).toBeNull();
      expect(await store.consume('email_verification', token)).toBeNull();
      expect(await store.consume('password_reset', token)).not.toBeNull();
    });

    it('stops working at its expiry, to the millisecond', async () => {
      const token = await store.issue({ purpose: 'password_reset', userId: ada, ttlMs: HOUR_MS });
      harness.clock.advance(HOUR_MS - 1);
      expect(await store.peek('password_reset', token)).not.toBeNull();
      harness.clock.advance(1);
      expect(await store.peek('password_reset', token)).toBeNull();
      expect(await store.consume('password_reset', token)).toBeNull();
    });

    it('voids the earlier link of the same purpose and account when a new one is issued, and only that one', async () => {
      const ben = await harness.createAccount('ben');
      const first = await store.issue({ purpose: 'password_reset', userId: ada, ttlMs: HOUR_MS });
      const other = await store.issue({ purpose: 'email_verification', userId: ada, ttlMs: HOUR_MS });
      const bens = await store.issue({ purpose: 'password_reset', userId: ben, ttlMs: HOUR_MS });
      const second = await harness.peer.issue({ purpose: 'password_reset', userId: ada, ttlMs: HOUR_MS });
      expect(await store.consume('password_reset', first)).toBeNull();
      expect(await store.consume('password_reset', second)).not.toBeNull();
      expect(await store.consume('email_verification', other)).not.toBeNull();
      expect(await store.consume('password_reset', bens)).not.toBeNull();
    });

    it("voids all of an account's links, of one purpose or of every one", async () => {
      const reset = await store.issue({ purpose: 'password_reset', userId: ada, ttlMs: HOUR_MS });
      const verification = await store.issue({ purpose: 'email_verification', userId: ada, ttlMs: HOUR_MS });
      const deletion = await store.issue({ purpose: 'account_deletion', userId: ada, ttlMs: HOUR_MS });
      await store.voidAll(ada, 'password_reset');
      expect(await store.peek('password_reset', reset)).toBeNull();
      expect(await store.peek('email_verification', verification)).not.toBeNull();
      await harness.peer.voidAll(ada);
      expect(await store.peek('email_verification', verification)).toBeNull();
      expect(await store.peek('account_deletion', deletion)).toBeNull();
    });

    it('deletes expired links in batches, soonest expired first, and keeps live ones', async () => {
      const ben = await harness.createAccount('ben');
      const cai = await harness.createAccount('cai');
      await store.issue({ purpose: 'password_reset', userId: ada, ttlMs: 1_000 });
      await store.issue({ purpose: 'password_reset', userId: ben, ttlMs: 2_000 });
      const live = await store.issue({ purpose: 'password_reset', userId: cai, ttlMs: HOUR_MS });
      harness.clock.advance(5_000);
      expect(await store.deleteExpired(harness.clock.now(), 1)).toBe(1);
      expect(await store.deleteExpired(harness.clock.now(), 10)).toBe(1);
      expect(await store.deleteExpired(harness.clock.now(), 10)).toBe(0);
      expect(await harness.storedDigests()).toEqual([tokenDigest(live)]);
    });
  });
}
