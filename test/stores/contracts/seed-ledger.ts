import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdminSeedLedger } from '../../../src/admin/seed-ledger.js';

/** What every AdminSeedLedger backend promises (src/admin/seed-ledger.ts). */
export interface AdminSeedLedgerHarness {
  ledger: AdminSeedLedger;
  /** The same ledger reached another way, as a second instance starting at the same time has. */
  peer: AdminSeedLedger;
  /** Registers an account in the same database; returns its id. */
  addAccount(username: string): Promise<number>;
  close(): Promise<void>;
}

const T0 = new Date('2026-11-21T10:00:00Z');
const later = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

export function describeAdminSeedLedgerContract(
  backend: string,
  open: () => Promise<AdminSeedLedgerHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`AdminSeedLedger contract: ${backend}`, () => {
    let harness: AdminSeedLedgerHarness;

    beforeEach(async () => {
      harness = await open();
    });
    afterEach(() => harness.close());

    it('remembers when a name was first listed and the newest account then, whatever later starts say', async () => {
      const alice = await harness.addAccount('alice');
      expect(await harness.ledger.firstListing('dana', T0)).toEqual({ at: T0, lastUserIdThen: alice });

      const bob = await harness.addAccount('bob');
      expect(await harness.peer.firstListing('dana', later(60))).toEqual({ at: T0, lastUserIdThen: alice });
      expect(await harness.ledger.firstListing('erin', later(90))).toEqual({
        at: later(90),
        lastUserIdThen: bob,
      });
    });

    it('says 0 for a name first listed before any account existed', async () => {
      expect(await harness.ledger.firstListing('dana', T0)).toEqual({ at: T0, lastUserIdThen: 0 });
    });

    it('gives two instances starting at once the same first listing', async () => {
      await harness.addAccount('alice');
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? harness.ledger : harness.peer).firstListing('dana', later(i)),
        ),
      );
      expect(new Set(answers.map((listing) => JSON.stringify(listing))).size).toBe(1);
    });
  });
}
