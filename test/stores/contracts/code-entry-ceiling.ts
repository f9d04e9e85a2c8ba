import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CodeEntryCeiling } from '../../../src/mfa/code-entry-ceiling.js';

/**
 * What every CodeEntryCeiling backend promises (src/mfa/code-entry-ceiling.ts): wrong codes in a
 * row are counted per account, across instances and restarts, and the ceiling suspends once.
 */
export interface CodeEntryCeilingHarness {
  /** Made with a ceiling of 5 wrong codes in a row. */
  ceiling: CodeEntryCeiling;
  /** The same counts reached another way (a second connection, as a second instance or a restart has). */
  peer: CodeEntryCeiling;
  /** Registers an account in the same database; returns its id. */
  addAccount(): Promise<number>;
  close(): Promise<void>;
}

export const CONTRACT_CEILING = 5;

export function describeCodeEntryCeilingContract(
  backend: string,
  open: () => Promise<CodeEntryCeilingHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`CodeEntryCeiling contract: ${backend}`, () => {
    let harness: CodeEntryCeilingHarness;
    let ceiling: CodeEntryCeiling;
    let alice: number;

    beforeEach(async () => {
      harness = await open();
      ceiling = harness.ceiling;
      alice = await harness.addAccount();
    });
    afterEach(() => harness.close());

    it('suspends at the ceiling, says so once, and stays suspended', async () => {
      const results = [];
      for (let i = 0; i < CONTRACT_CEILING + 1; i += 1) results.push(await ceiling.recordFailure(alice));

      expect(results.map((result) => result.consecutive)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(results.map((result) => result.suspendedNow)).toEqual([false, false, false, false, true, false]);
      expect(await ceiling.isSuspended(alice)).toBe(true);
    });

    it('starts again from zero after a right code', async () => {
      for (let i = 0; i < CONTRACT_CEILING - 1; i += 1) await ceiling.recordFailure(alice);
      await ceiling.recordSuccess(alice);
      for (let i = 0; i < CONTRACT_CEILING - 1; i += 1) await ceiling.recordFailure(alice);
      expect(await ceiling.isSuspended(alice)).toBe(false);
    });

    it('is lifted by unlock, which starts the count again; unlocking an account that is not suspended says so', async () => {
      for (let i = 0; i < CONTRACT_CEILING; i += 1) await ceiling.recordFailure(alice);

      expect(await ceiling.unlock(alice)).toBe(true);
      expect(await ceiling.isSuspended(alice)).toBe(false);
      expect((await ceiling.recordFailure(alice)).consecutive).toBe(1);
      expect(await ceiling.unlock(alice)).toBe(false);
    });

    it('is not lifted by a right code once suspended', async () => {
      for (let i = 0; i < CONTRACT_CEILING; i += 1) await ceiling.recordFailure(alice);
      await ceiling.recordSuccess(alice);
      expect(await ceiling.isSuspended(alice)).toBe(true);
    });

    it('keeps each account apart', async () => {
      const bob = await harness.addAccount();
      for (let i = 0; i < CONTRACT_CEILING; i += 1) await ceiling.recordFailure(alice);
      expect(await ceiling.isSuspended(bob)).toBe(false);
      expect((await ceiling.recordFailure(bob)).consecutive).toBe(1);
    });

    it('is kept in the database: another instance (or a restart) sees the suspension and can lift it', async () => {
      for (let i = 0; i < CONTRACT_CEILING; i += 1) await ceiling.recordFailure(alice);
      expect(await harness.peer.isSuspended(alice)).toBe(true);
      expect(await harness.peer.unlock(alice)).toBe(true);
      expect(await ceiling.isSuspended(alice)).toBe(false);
    });

    it('counts 20 racing wrong codes on two instances once each, and says "suspended now" to exactly one', async () => {
      // Threat: a guesser spreading wrong codes over instances so that counts overwrite each other
      // and never reach the ceiling.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? ceiling : harness.peer).recordFailure(alice)),
      );
      expect(results.map((result) => result.consecutive).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      expect(results.filter((result) => result.suspendedNow)).toHaveLength(1);
      expect(await ceiling.isSuspended(alice)).toBe(true);
    });
  });
}
