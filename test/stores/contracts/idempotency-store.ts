import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IdempotencyStore } from '../../../src/api/idempotency.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every IdempotencyStore backend promises (src/api/idempotency.ts): a key's Idempotency-Key is
 * claimed by one write, so of requests racing with it exactly one goes ahead; its answer is kept
 * for replays, and a claim is dropped or replaced only by the request that holds it, or once it is
 * too old to count.
 */
export interface IdempotencyStoreHarness {
  store: IdempotencyStore;
  peer: IdempotencyStore;
  clock: TestClock;
  /** An API key (a real row where the backend checks). */
  createKeyId(): Promise<number>;
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60_000;
const ABANDONED_MS = 5 * 60_000;

export function describeIdempotencyStoreContract(
  backend: string,
  open: () => Promise<IdempotencyStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`IdempotencyStore contract: ${backend}`, () => {
    let harness: IdempotencyStoreHarness;
    let store: IdempotencyStore;
    let keyId: number;

    const claim = (requestHash: string, on: IdempotencyStore = store, idempotencyKey = 'order-1') => {
      const now = harness.clock.now();
      return on.claim({
        keyId,
        idempotencyKey,
        requestHash,
        now,
        replaceBefore: new Date(now.getTime() - DAY_MS),
        abandonedBefore: new Date(now.getTime() - ABANDONED_MS),
      });
    };
    const claimedAt = async (requestHash: string) => {
      const result = await claim(requestHash);
      if (!result.claimed) throw new Error('expected a claim');
      return result.claimedAt;
    };

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      keyId = await harness.createKeyId();
    });
    afterEach(() => harness.close());

    it('claims a new key once, then shows the claim in flight to the next request', async () => {
      expect(await claim('hash-a')).toMatchObject({ claimed: true });
      expect(await claim('hash-a', harness.peer)).toEqual({
        claimed: false,
        existing: { requestHash: 'hash-a', response: null },
      });
    });

    it('keeps the answer for replays, with the digest of the request it answered', async () => {
      const at = await claimedAt('hash-a');
      await store.complete(keyId, 'order-1', at, { status: 201, body: '{"id":"ver_1"}' });
      expect(await claim('hash-b', harness.peer)).toEqual({
        claimed: false,
        existing: { requestHash: 'hash-a', response: { status: 201, body: '{"id":"ver_1"}' } },
      });
    });

    it('keeps keys of different API keys apart', async () => {
      await claimedAt('hash-a');
      const other = keyId;
      keyId = await harness.createKeyId();
      expect(await claim('hash-a')).toMatchObject({ claimed: true });
      keyId = other;
      expect(await claim('hash-a')).toMatchObject({ claimed: false });
    });

    it('drops a claim in flight on release, so a retry with the same key goes ahead', async () => {
      const at = await claimedAt('hash-a');
      await store.release(keyId, 'order-1', at);
      expect(await claim('hash-a', harness.peer)).toMatchObject({ claimed: true });
    });

    it('never releases an answered claim, nor one made by another request', async () => {
      const at = await claimedAt('hash-a');
      await store.complete(keyId, 'order-1', at, { status: 201, body: '{}' });
      await store.release(keyId, 'order-1', at);
      expect(await claim('hash-a')).toMatchObject({
        claimed: false,
        existing: { response: { status: 201 } },
      });
      await store.release(keyId, 'order-1', at - 1);
      await store.complete(keyId, 'order-1', at - 1, { status: 500, body: '{}' });
      expect(await claim('hash-a')).toMatchObject({
        claimed: false,
        existing: { response: { status: 201 } },
      });
    });

    it('takes over a row a day old, answered or not, as if it were gone', async () => {
      const at = await claimedAt('hash-a');
      await store.complete(keyId, 'order-1', at, { status: 201, body: '{}' });
      harness.clock.advance(DAY_MS + 1);
      expect(await claim('hash-b')).toMatchObject({ claimed: true });
      expect(await claim('hash-b', harness.peer)).toEqual({
        claimed: false,
        existing: { requestHash: 'hash-b', response: null },
      });
    });

    it('takes over a claim left in flight by a stopped instance, and only then', async () => {
      await claimedAt('hash-a');
      harness.clock.advance(ABANDONED_MS - 1);
      expect(await claim('hash-a')).toMatchObject({ claimed: false });
      harness.clock.advance(2);
      const taken = await claim('hash-a', harness.peer);
      expect(taken).toMatchObject({ claimed: true });
    });

    it('deletes rows older than the given time, in batches', async () => {
      await claimedAt('hash-a');
      await claim('hash-b', store, 'order-2');
      await claim('hash-c', store, 'order-3');
      harness.clock.advance(1_000);
      await claim('hash-d', store, 'order-4');
      const cutoff = new Date(harness.clock.now().getTime());
      expect(await store.deleteOlderThan(cutoff, 2)).toBe(2);
      expect(await store.deleteOlderThan(cutoff, 2)).toBe(1);
      expect(await store.deleteOlderThan(cutoff, 2)).toBe(0);
      expect(await claim('hash-d', store, 'order-4')).toMatchObject({ claimed: false });
      expect(await claim('hash-a')).toMatchObject({ claimed: true });
    });

    it('lets exactly one of 20 parallel requests with one key claim it, on two instances', async () => {
      // Threat: a retried request arriving twice at once sending two codes.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => claim('hash-a', i % 2 === 0 ? store : harness.peer)),
      );
      expect(results.filter((result) => result.claimed)).toHaveLength(1);
    });
  });
}
