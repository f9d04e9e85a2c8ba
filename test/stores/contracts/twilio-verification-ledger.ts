import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  StartedVerification,
  TwilioVerificationLedger,
} from '../../../src/mfa/providers/twilio-verification-ledger.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every TwilioVerificationLedger backend promises (src/mfa/providers/twilio-verification-ledger.ts):
 * what one instance records, every other reads, until it is forgotten or its time is up.
 */
export interface TwilioVerificationLedgerHarness {
  ledger: TwilioVerificationLedger;
  /** The same ledger reached another way: a second connection, as a second instance has. */
  peer: TwilioVerificationLedger;
  clock: TestClock;
  /** Lets `ms` pass for the ledger (and for real, where Redis counts lifetimes down). */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Long enough that nothing is forgotten by itself during a spec, even on a busy machine. */
const LONG_REMEMBER_MS = 60_000;
/** Short enough to wait out for real against Redis. */
const SHORT_REMEMBER_MS = 300;

// Fictional numbers only (+1 202 555 0100-0199).
const ALICE = '+12025550142';
const BOB = '+12025550143';

export function describeTwilioVerificationLedgerContract(
  backend: string,
  open: (options: { rememberMs: number }) => Promise<TwilioVerificationLedgerHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`TwilioVerificationLedger contract: ${backend}`, () => {
    let harness: TwilioVerificationLedgerHarness;
    let ledger: TwilioVerificationLedger;
    let peer: TwilioVerificationLedger;
    const started = (sid: string, overrides: Partial<StartedVerification> = {}): StartedVerification => ({
      sid,
      to: ALICE,
      scope: 'login',
      account: 1,
      startedAt: harness.clock.now().getTime(),
      ...overrides,
    });

    beforeEach(async () => {
      harness = await open({ rememberMs: LONG_REMEMBER_MS });
      ({ ledger, peer } = harness);
    });
    afterEach(() => harness.close());

    it('finds a verification one instance recorded from the other, as recorded', async () => {
      const verification = started('VE1', { scope: 'admin', account: 42 });
      await ledger.record(verification);
      expect(await peer.find('VE1')).toEqual(verification);
    });

    it('keeps a verification started without an account without one', async () => {
      const { account: _, ...withoutAccount } = started('VE1');
      await ledger.record(withoutAccount);
      const found = await peer.find('VE1');
      expect(found).toEqual(withoutAccount);
      expect(found).not.toHaveProperty('account');
    });

    it('keeps a verification the verification API started as its key’s, with no account', async () => {
      const { account: _, ...withoutAccount } = started('VE1');
      const forKey: StartedVerification = { ...withoutAccount, scope: 'api', apiKey: 7 };
      await ledger.record(forKey);
      const found = await peer.find('VE1');
      expect(found).toEqual(forKey);
      expect(found).not.toHaveProperty('account');
      expect(await peer.pendingFor(ALICE)).toEqual([forKey]);
    });

    it('finds nothing for a sid never recorded', async () => {
      expect(await ledger.find('VE-unknown')).toBeNull();
      expect(await ledger.pendingFor(ALICE)).toEqual([]);
    });

    it('lists the verifications of a number, oldest first, and only that number’s', async () => {
      const older = started('VE-old', { account: 1 });
      harness.clock.advance(1_000);
      const newer = started('VE-new', { account: 2, scope: 'admin' });
      await peer.record(newer);
      await ledger.record(older);
      await ledger.record(started('VE-bob', { to: BOB }));
      expect(await peer.pendingFor(ALICE)).toEqual([older, newer]);
    });

    it('replaces the entry of a sid recorded again, under its new number', async () => {
      await ledger.record(started('VE1', { account: 1 }));
      await peer.record(started('VE1', { account: 2, to: BOB }));
      expect(await ledger.find('VE1')).toMatchObject({ account: 2, to: BOB });
      expect(await ledger.pendingFor(ALICE)).toEqual([]);
      expect((await ledger.pendingFor(BOB)).map((v) => v.sid)).toEqual(['VE1']);
    });

    it('forgets a verification on either instance, from both lookups', async () => {
      await ledger.record(started('VE1'));
      await ledger.record(started('VE2'));
      await peer.forget('VE1');
      expect(await ledger.find('VE1')).toBeNull();
      expect((await ledger.pendingFor(ALICE)).map((v) => v.sid)).toEqual(['VE2']);
      await expect(ledger.forget('VE-unknown')).resolves.toBeUndefined();
    });

    it('forgets a verification by itself once its time is up', async () => {
      const shortLived = await open({ rememberMs: SHORT_REMEMBER_MS });
      try {
        await shortLived.ledger.record({ ...started('VE1'), startedAt: shortLived.clock.now().getTime() });
        await shortLived.elapse(SHORT_REMEMBER_MS);
        expect(await shortLived.peer.find('VE1')).toBeNull();
        expect(await shortLived.peer.pendingFor(ALICE)).toEqual([]);
      } finally {
        await shortLived.close();
      }
    });
  });
}
