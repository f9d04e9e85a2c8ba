import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdminSeedLedger } from '../../../src/admin/seed-ledger.js';

/** What every AdminSeedLedger backend promises (src/admin/seed-ledger.ts). */
export interface AdminSeedLedgerHarness {
  ledger: AdminSeedLedger;
  /** The same ledger reached another way, as a second instance starting at the same time has. */
  peer: AdminSeedLedger;
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

    it('remembers when a name was first listed, whatever later starts say', async () => {
      expect(await harness.ledger.firstListedAt('dana', T0)).toEqual(T0);
      expect(await harness.peer.firstListedAt('dana', later(60))).toEqual(T0);
      expect(await harness.ledger.firstListedAt('erin', later(90))).toEqual(later(90));
    });

    it('gives two instances starting at once the same first time', async () => {
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? harness.ledger : harness.peer).firstListedAt('dana', later(i)),
        ),
      );
      expect(new Set(answers.map((date) => date.getTime())).size).toBe(1);
    });
  });
}
