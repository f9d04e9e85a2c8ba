import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  ApiVerification,
  ApiVerificationStore,
  NewApiVerification,
} from '../../../src/api/verification-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every ApiVerificationStore backend promises (src/api/verification-store.ts): each rule that
 * must hold across requests is one conditional write, so the races below have exactly one winner
 * whichever instance each request reaches.
 */
export interface ApiVerificationStoreHarness {
  store: ApiVerificationStore;
  /** The same verifications reached another way: a second connection, as a second instance has. */
  peer: ApiVerificationStore;
  clock: TestClock;
  /** An API key the store may hold verifications for (a real row where the backend checks). */
  createKeyId(): Promise<number>;
  close(): Promise<void>;
}

const CODE_TTL_MS = 5 * 60_000;
const MAX_ATTEMPTS = 5;
const HOLD_MS = 30_000;
const PHONE = '+12025550142';

export function describeApiVerificationStoreContract(
  backend: string,
  open: () => Promise<ApiVerificationStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`ApiVerificationStore contract: ${backend}`, () => {
    let harness: ApiVerificationStoreHarness;
    let store: ApiVerificationStore;
    let keyId: number;

    const newVerification = (overrides: Partial<NewApiVerification> = {}): NewApiVerification => {
      const createdAt = harness.clock.now().getTime();
      return {
        id: `ver_${randomBytes(16).toString('base64url')}`,
        keyId,
        label: 'checkout',
        phone: PHONE,
        channel: 'sms',
        provider: 'console',
        createdAt,
        expiresAt: createdAt + CODE_TTL_MS,
        ...overrides,
      };
    };
    const send = (overrides: Partial<NewApiVerification> = {}) => store.create(newVerification(overrides));
    const ids = (verifications: ApiVerification[]) => verifications.map((verification) => verification.id);
    const holdUntil = () => harness.clock.now().getTime() + HOLD_MS;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      keyId = await harness.createKeyId();
    });
    afterEach(() => harness.close());

    describe('create and find', () => {
      it('returns a new verification pending, with no attempt used, and finds it by key and id as created', async () => {
        const created = await send({ handle: 'VE0123', channel: 'voice', provider: 'twilio' });
        expect(created).toMatchObject({
          attempts: 0,
          status: 'pending',
          closedAt: null,
          checkHeldUntil: null,
        });
        expect(await store.find(keyId, created.id)).toEqual(created);
        expect(await harness.peer.find(keyId, created.id)).toEqual(created);
      });

      it('leaves out a handle the provider did not give', async () => {
        const created = await send();
        expect(await store.find(keyId, created.id)).not.toHaveProperty('handle');
      });

      it('finds another key’s verification for no one but that key', async () => {
        // Threat: a caller naming the id of another key's verification to read, check or cancel it.
        const other = await harness.createKeyId();
        const theirs = await send({ keyId: other });
        expect(await store.find(keyId, theirs.id)).toBeNull();
        expect((await store.find(other, theirs.id))?.id).toBe(theirs.id);
        expect(await store.find(keyId, 'ver_no-such-verification')).toBeNull();
      });
    });

    describe('findNewestPending', () => {
      it('finds the key’s newest pending verification to the number under the label', async () => {
        await send();
        harness.clock.advance(1_000);
        const newer = await send();
        expect((await store.findNewestPending(keyId, 'checkout', PHONE))?.id).toBe(newer.id);
      });

      it('keeps labels, numbers and keys apart, and skips closed ones', async () => {
        const other = await harness.createKeyId();
        await send({ label: 'login' });
        await send({ phone: '+12025550143' });
        await send({ keyId: other });
        const approved = await send();
        await store.close(approved.id, 'approved');
        expect(await store.findNewestPending(keyId, 'checkout', PHONE)).toBeNull();
      });

      it('still finds one past its expiry: expiry is the rules’ business, closing the store’s', async () => {
        const sent = await send();
        harness.clock.advance(CODE_TTL_MS + 1);
        expect((await store.findNewestPending(keyId, 'checkout', PHONE))?.id).toBe(sent.id);
      });
    });

    describe('cancelOthers', () => {
      it('cancels every other pending verification of the key, label and number, and returns those', async () => {
        const first = await send();
        const second = await send();
        const kept = await send();
        harness.clock.advance(2_000);
        const canceled = await store.cancelOthers(keyId, 'checkout', PHONE, kept.id);
        const closedAt = harness.clock.now().getTime();
        expect(ids(canceled).sort()).toEqual([first.id, second.id].sort());
        for (const verification of canceled)
          expect(verification).toMatchObject({ status: 'canceled', closedAt });
        expect(await store.find(keyId, first.id)).toMatchObject({ status: 'canceled', closedAt });
        expect((await store.findNewestPending(keyId, 'checkout', PHONE))?.id).toBe(kept.id);
      });

      it('leaves other labels, numbers, keys and closed verifications alone', async () => {
        const other = await harness.createKeyId();
        const login = await send({ label: 'login' });
        const elsewhere = await send({ phone: '+12025550143' });
        const theirs = await send({ keyId: other });
        const approved = await send();
        await store.close(approved.id, 'approved');
        const kept = await send();
        expect(await store.cancelOthers(keyId, 'checkout', PHONE, kept.id)).toEqual([]);
        for (const untouched of [login, elsewhere]) {
          expect((await store.find(keyId, untouched.id))?.status).toBe('pending');
        }
        expect((await store.find(other, theirs.id))?.status).toBe('pending');
        expect((await store.find(keyId, approved.id))?.status).toBe('approved');
      });
    });

    describe('attempts and the one check in flight', () => {
      it('reserves attempts up to the cap, one check at a time, then refuses', async () => {
        const sent = await send();
        const taken: Array<number | null> = [];
        for (let i = 0; i < MAX_ATTEMPTS + 1; i += 1) {
          const until = holdUntil();
          const attempts = await store.reserveAttempt(sent.id, MAX_ATTEMPTS, until);
          taken.push(attempts);
          if (attempts !== null) await store.endCheck(sent.id, until);
        }
        expect(taken).toEqual([1, 2, 3, 4, 5, null]);
        expect(await store.find(keyId, sent.id)).toMatchObject({
          attempts: MAX_ATTEMPTS,
          checkHeldUntil: null,
        });
      });

      it('refuses a second check while the first holds the verification, until it ends or its hold runs out', async () => {
        const sent = await send();
        const until = holdUntil();
        expect(await store.reserveAttempt(sent.id, MAX_ATTEMPTS, until)).toBe(1);
        expect((await store.find(keyId, sent.id))?.checkHeldUntil).toBe(until);
        expect(await harness.peer.reserveAttempt(sent.id, MAX_ATTEMPTS, holdUntil())).toBeNull();
        await store.endCheck(sent.id, until);
        const next = holdUntil();
        expect(await harness.peer.reserveAttempt(sent.id, MAX_ATTEMPTS, next)).toBe(2);
        // A check whose instance stopped: its hold runs out, and another may check.
        harness.clock.advance(HOLD_MS);
        expect(await store.reserveAttempt(sent.id, MAX_ATTEMPTS, holdUntil())).toBe(3);
      });

      it('refuses an attempt at a closed or unknown verification', async () => {
        const sent = await send();
        await store.close(sent.id, 'canceled');
        expect(await store.reserveAttempt(sent.id, MAX_ATTEMPTS, holdUntil())).toBeNull();
        expect(await store.reserveAttempt('ver_no-such-verification', MAX_ATTEMPTS, holdUntil())).toBeNull();
        expect((await store.find(keyId, sent.id))?.attempts).toBe(0);
      });

      it('gives back an attempt never compared, with the hold, only for the check that holds it', async () => {
        const sent = await send();
        const first = holdUntil();
        await store.reserveAttempt(sent.id, MAX_ATTEMPTS, first);
        await store.endCheck(sent.id, first);
        const second = holdUntil() + 1;
        await store.reserveAttempt(sent.id, MAX_ATTEMPTS, second);
        // The first check's hold is over: it can give back nothing now.
        await store.releaseAttempt(sent.id, first);
        expect(await store.find(keyId, sent.id)).toMatchObject({ attempts: 2, checkHeldUntil: second });
        await store.releaseAttempt(sent.id, second);
        expect(await store.find(keyId, sent.id)).toMatchObject({ attempts: 1, checkHeldUntil: null });
        await store.releaseAttempt(sent.id, second);
        expect((await store.find(keyId, sent.id))?.attempts).toBe(1);
      });
    });

    describe('close', () => {
      it('closes once, with the time and status, ends any hold, and says so only the first time', async () => {
        const sent = await send();
        await store.reserveAttempt(sent.id, MAX_ATTEMPTS, holdUntil());
        harness.clock.advance(30_000);
        expect(await store.close(sent.id, 'approved')).toBe(true);
        expect(await store.close(sent.id, 'expired')).toBe(false);
        expect(await store.find(keyId, sent.id)).toMatchObject({
          status: 'approved',
          closedAt: harness.clock.now().getTime(),
          checkHeldUntil: null,
        });
      });

      it('says false for an unknown verification', async () => {
        expect(await store.close('ver_no-such-verification', 'approved')).toBe(false);
      });
    });

    describe('housekeeping', () => {
      it('deletes verifications that expired before the given time, in batches, and nothing younger', async () => {
        const old = [await send(), await send(), await send()];
        harness.clock.advance(CODE_TTL_MS + 1);
        const young = await send();
        const cutoff = new Date(young.createdAt);
        expect(await store.deleteExpired(cutoff, 2)).toBe(2);
        expect(await store.deleteExpired(cutoff, 2)).toBe(1);
        expect(await store.deleteExpired(cutoff, 2)).toBe(0);
        for (const gone of old) expect(await store.find(keyId, gone.id)).toBeNull();
        expect(await store.find(keyId, young.id)).not.toBeNull();
      });
    });

    describe('racing requests, on two instances', () => {
      const onEither = (i: number) => (i % 2 === 0 ? store : harness.peer);

      it('lets exactly one of 20 parallel checks hold a verification', async () => {
        // Threat: two checks with the right code at once, the provider's answer to the second read
        // as a wrong or expired code (or either approving twice).
        const sent = await send();
        const until = holdUntil();
        const taken = await Promise.all(
          Array.from({ length: 20 }, (_, i) => onEither(i).reserveAttempt(sent.id, MAX_ATTEMPTS, until)),
        );
        expect(taken.filter((attempts) => attempts !== null)).toEqual([1]);
      });

      it('lets exactly one of 10 parallel closes close it', async () => {
        const sent = await send();
        const closed = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            onEither(i).close(sent.id, i % 3 === 0 ? 'canceled' : 'approved'),
          ),
        );
        expect(closed.filter(Boolean)).toHaveLength(1);
      });

      it('lets either the approval or a newer code win, never both', async () => {
        // Threat: a code approved at the very moment a newer one voided it.
        const results = await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const phone = `+120255501${String(10 + i)}`;
            const old = await send({ phone });
            const newer = newVerification({ phone });
            await harness.peer.create(newer);
            const [approved, canceled] = await Promise.all([
              store.close(old.id, 'approved'),
              harness.peer.cancelOthers(keyId, 'checkout', phone, newer.id),
            ]);
            return {
              approved,
              canceledOld: ids(canceled).includes(old.id),
              final: await store.find(keyId, old.id),
            };
          }),
        );
        for (const { approved, canceledOld, final } of results) {
          expect(approved).not.toBe(canceledOld);
          expect(final?.status).toBe(approved ? 'approved' : 'canceled');
        }
      });
    });
  });
}
