import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecoveryCodeStore } from '../../../src/factors/recovery-code-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every RecoveryCodeStore backend promises (src/factors/recovery-code-store.ts): one set per
 * account, replaced whole, each code spent once however many requests race for it.
 */
export interface RecoveryCodeStoreHarness {
  store: RecoveryCodeStore;
  /** The same codes reached another way: a second connection, as a second instance has. */
  peer: RecoveryCodeStore;
  clock: TestClock;
  /** Makes an account the codes can belong to; returns its id. */
  createAccount(name: string): Promise<number>;
  /** Deletes the account the way the person's own deletion does (src/account/deletion.ts). */
  deleteAccount(id: number): Promise<void>;
  /** Every recovery_codes row of the account, as stored. */
  storedRows(userId: number): Promise<{ code_hmac: string; used_at: number | null }[]>;
  close(): Promise<void>;
}

/** Ten stand-in digests of a set (the store keeps whatever digest it is given). */
const digestsOf = (set: string) =>
  Array.from({ length: 10 }, (_, index) => `${set}${String(index).padStart(2, '0')}`.padEnd(64, 'f'));

export function describeRecoveryCodeStoreContract(
  backend: string,
  open: () => Promise<RecoveryCodeStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`RecoveryCodeStore contract: ${backend}`, () => {
    let harness: RecoveryCodeStoreHarness;
    let store: RecoveryCodeStore;
    let ada: number;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      ada = await harness.createAccount('ada');
    });
    afterEach(() => harness.close());

    it('has no set until one is made, then ten unused codes made now', async () => {
      expect(await store.summary(ada)).toEqual({ total: 0, unused: 0, createdAt: null });
      expect(await store.createdAt(ada)).toBeNull();
      expect(await store.countUnused(ada)).toBe(0);

      await store.replaceAll(ada, digestsOf('a'));
      const madeAt = harness.clock.now();
      expect(await harness.peer.summary(ada)).toEqual({ total: 10, unused: 10, createdAt: madeAt });
      expect(await harness.peer.createdAt(ada)).toEqual(madeAt);
      expect(await harness.peer.countUnused(ada)).toBe(10);
      expect((await harness.storedRows(ada)).map((row) => row.code_hmac).sort()).toEqual(digestsOf('a'));
    });

    it('spends a code once, on either connection, and counts what is left', async () => {
      await store.replaceAll(ada, digestsOf('a'));
      const [first, second] = digestsOf('a');
      harness.clock.advance(1_000);
      expect(await store.spend(ada, first!, harness.clock.now())).toBe(true);
      expect(await harness.peer.spend(ada, first!, harness.clock.now())).toBe(false);
      expect(await store.spend(ada, first!, harness.clock.now())).toBe(false);
      expect(await harness.peer.spend(ada, second!, harness.clock.now())).toBe(true);
      expect(await store.countUnused(ada)).toBe(8);
      // A used code stays in the set: the account still has one, made when it was made.
      expect(await store.summary(ada)).toEqual({
        total: 10,
        unused: 8,
        createdAt: new Date(harness.clock.now().getTime() - 1_000),
      });
      const used = (await harness.storedRows(ada)).filter((row) => row.used_at !== null);
      expect(used.map((row) => [row.code_hmac, row.used_at]).sort()).toEqual(
        [first, second].map((digest) => [digest, harness.clock.now().getTime()]),
      );
    });

    it('spends only the account’s own codes', async () => {
      // Threat: a code of one account (seen over a shoulder, say) used to sign in to another.
      const ben = await harness.createAccount('ben');
      await store.replaceAll(ada, digestsOf('a'));
      await store.replaceAll(ben, digestsOf('b'));
      expect(await store.spend(ben, digestsOf('a')[0]!, harness.clock.now())).toBe(false);
      expect(await store.spend(ada, digestsOf('b')[0]!, harness.clock.now())).toBe(false);
      expect(await store.spend(ada, 'f'.repeat(64), harness.clock.now())).toBe(false);
      expect(await store.countUnused(ada)).toBe(10);
      expect(await store.countUnused(ben)).toBe(10);
    });

    for (const racers of [2, 10]) {
      it(`lets exactly one of ${racers} parallel spends of one code through`, async () => {
        // Threat: one code, seen or stolen, replayed in parallel requests to get in more than once.
        await store.replaceAll(ada, digestsOf('a'));
        const digest = digestsOf('a')[3]!;
        const spends = await Promise.all(
          Array.from({ length: racers }, (_, index) =>
            (index % 2 ? harness.peer : store).spend(ada, digest, harness.clock.now()),
          ),
        );
        expect(spends.filter(Boolean)).toHaveLength(1);
        expect(await store.countUnused(ada)).toBe(9);
      });
    }

    it('voids the whole old set when a new one is made, used codes and unused alike', async () => {
      await store.replaceAll(ada, digestsOf('a'));
      await store.spend(ada, digestsOf('a')[0]!, harness.clock.now());
      harness.clock.advance(60_000);
      await harness.peer.replaceAll(ada, digestsOf('n'));
      for (const old of digestsOf('a').slice(1)) {
        expect(await store.spend(ada, old, harness.clock.now())).toBe(false);
      }
      expect(await store.summary(ada)).toEqual({ total: 10, unused: 10, createdAt: harness.clock.now() });
      expect(await store.spend(ada, digestsOf('n')[0]!, harness.clock.now())).toBe(true);
    });

    // A race shows only when the requests overlap: several rounds of eight make that near certain.
    const RACE_ROUNDS = 5;
    const RACING_SETS = ['s', 't', 'u', 'v', 'w', 'x', 'y', 'z'];

    it('keeps exactly one set when several are made at once', async () => {
      // "Make a new set" pressed in several tabs at once: each tab shows a set, one set is kept. On
      // one connection pool, as one instance has (SQLite's connection runs one transaction at a
      // time; PostgreSQL's pool runs them side by side).
      await store.replaceAll(ada, digestsOf('a'));
      for (let round = 0; round < RACE_ROUNDS; round += 1) {
        await Promise.all(RACING_SETS.map((set) => store.replaceAll(ada, digestsOf(set))));
        const kept = (await harness.storedRows(ada)).map((row) => row.code_hmac).sort();
        expect(RACING_SETS.map(digestsOf)).toContainEqual(kept);
      }
    });

    it('makes a first set only for an account that has none, even a used-up one', async () => {
      expect(await store.addFirstSet(ada, digestsOf('a'))).toBe(true);
      expect(await harness.peer.addFirstSet(ada, digestsOf('b'))).toBe(false);
      for (const digest of digestsOf('a')) await store.spend(ada, digest, harness.clock.now());
      expect(await store.addFirstSet(ada, digestsOf('c'))).toBe(false);
      expect((await harness.storedRows(ada)).map((row) => row.code_hmac).sort()).toEqual(digestsOf('a'));
    });

    it('makes exactly one first set when several are asked for at once', async () => {
      // The offer after a login, pressed twice: one set made, the other press told there is one.
      for (let round = 0; round < RACE_ROUNDS; round += 1) {
        const account = await harness.createAccount(`racer${round}`);
        const made = await Promise.all(RACING_SETS.map((set) => store.addFirstSet(account, digestsOf(set))));
        expect(made.filter(Boolean)).toHaveLength(1);
        const kept = (await harness.storedRows(account)).map((row) => row.code_hmac).sort();
        expect(kept).toEqual(digestsOf(RACING_SETS[made.indexOf(true)]!));
      }
    });

    it('leaves another account’s set alone when one is replaced or removed', async () => {
      const ben = await harness.createAccount('ben');
      await store.replaceAll(ben, digestsOf('b'));
      await store.replaceAll(ada, digestsOf('a'));
      await store.replaceAll(ada, digestsOf('n'));
      expect(await store.removeAll(ada)).toBe(10);
      expect(await store.summary(ada)).toEqual({ total: 0, unused: 0, createdAt: null });
      expect(await store.removeAll(ada)).toBe(0);
      expect(await store.countUnused(ben)).toBe(10);
    });

    it('forgets the codes when the account is deleted', async () => {
      await store.replaceAll(ada, digestsOf('a'));
      await harness.deleteAccount(ada);
      expect(await harness.storedRows(ada)).toEqual([]);
      expect(await store.summary(ada)).toEqual({ total: 0, unused: 0, createdAt: null });
    });
  });
}
