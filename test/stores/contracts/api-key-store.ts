import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiKeyStore, NewApiKey } from '../../../src/api/keys.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every ApiKeyStore backend promises (src/api/keys.ts): a key is found by its digest alone,
 * whichever instance asks; a revocation is one conditional write, so of two admins revoking at
 * once exactly one is told it was them; a key's last use is written at most once per resolution
 * (a busy key must not write a row per request); and a key outlives the account of the admin who
 * made it (it belongs to the site, not to that admin).
 */
export interface ApiKeyStoreHarness {
  store: ApiKeyStore;
  /** The same keys reached another way: a second connection, as a second instance has. */
  peer: ApiKeyStore;
  clock: TestClock;
  /** Makes an account, an admin when asked; returns its id. */
  createAccount(name: string, options?: { admin?: boolean }): Promise<number>;
  /** Deletes the account as the person's own deletion does (users.deleteAccount). */
  deleteAccount(id: number): Promise<void>;
  close(): Promise<void>;
}

const MINUTE_MS = 60_000;

export function describeApiKeyStoreContract(
  backend: string,
  open: () => Promise<ApiKeyStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`ApiKeyStore contract: ${backend}`, () => {
    let harness: ApiKeyStoreHarness;
    let store: ApiKeyStore;
    let ada: number;
    let digests = 0;

    const newKey = (overrides: Partial<NewApiKey> = {}): NewApiKey => {
      digests += 1;
      return {
        name: 'Shop checkout',
        keyHash: digests.toString(16).padStart(64, '0'),
        hint: `kh_test_K${String(digests).padStart(3, '0')}`,
        channels: ['sms'],
        createdBy: ada,
        ...overrides,
      };
    };
    /** A minute's resolution, as the middleware asks for it at `at`. */
    const touchAt = (id: number, at: Date) => store.touch(id, at, new Date(at.getTime() - MINUTE_MS));

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      ada = await harness.createAccount('ada', { admin: true });
    });
    afterEach(() => harness.close());

    describe('create and find', () => {
      it('keeps a key as given, with when and by whom it was made, and finds it by digest or id from another instance', async () => {
        const made = await store.create(newKey({ name: 'Voice sample', channels: ['sms', 'voice'] }));
        expect(made).toEqual({
          id: expect.any(Number),
          name: 'Voice sample',
          hint: made.hint,
          channels: ['sms', 'voice'],
          createdAt: harness.clock.now(),
          createdBy: ada,
          lastUsedAt: null,
          revokedAt: null,
        });
        const digest = digests.toString(16).padStart(64, '0');
        expect(await harness.peer.findByHash(digest)).toEqual(made);
        expect(await harness.peer.findById(made.id)).toEqual(made);
      });

      it('finds nothing for an unknown digest or id', async () => {
        await store.create(newKey());
        expect(await store.findByHash('f'.repeat(64))).toBeNull();
        expect(await store.findById(987_654)).toBeNull();
      });

      it('keeps the channels in one order, each once, however they were given', async () => {
        const made = await store.create(newKey({ channels: ['voice', 'sms', 'voice'] }));
        expect(made.channels).toEqual(['sms', 'voice']);
        expect((await harness.peer.findById(made.id))!.channels).toEqual(['sms', 'voice']);
        const voiceOnly = await store.create(newKey({ channels: ['voice'] }));
        expect((await harness.peer.findById(voiceOnly.id))!.channels).toEqual(['voice']);
      });

      it('refuses a second key with the same digest: a digest finds one key only', async () => {
        const first = newKey();
        await store.create(first);
        await expect(store.create({ ...first, name: 'Copy' })).rejects.toThrow();
        expect((await store.list()).map((key) => key.name)).toEqual(['Shop checkout']);
      });

      it('lets two keys share a name: ids tell them apart', async () => {
        const one = await store.create(newKey({ name: 'Same' }));
        const two = await store.create(newKey({ name: 'Same' }));
        expect(one.id).not.toBe(two.id);
      });
    });

    describe('list', () => {
      it('lists every key, revoked ones too, the newest first', async () => {
        const first = await store.create(newKey({ name: 'first' }));
        harness.clock.advance(MINUTE_MS);
        const second = await store.create(newKey({ name: 'second' }));
        harness.clock.advance(MINUTE_MS);
        const third = await store.create(newKey({ name: 'third' }));
        expect(await store.revoke(second.id)).toBe(true);
        const listed = await harness.peer.list();
        expect(listed.map((key) => key.name)).toEqual(['third', 'second', 'first']);
        expect(listed[0]).toEqual(third);
        expect(listed[1]!.revokedAt).toEqual(harness.clock.now());
        expect(listed[2]).toEqual(first);
      });

      it('is empty before the first key', async () => {
        expect(await store.list()).toEqual([]);
      });
    });

    describe('revoke', () => {
      it('revokes once: the first call is told so, a second changes nothing, and the key is still found (as revoked)', async () => {
        const made = await store.create(newKey());
        harness.clock.advance(5 * MINUTE_MS);
        const revokedAt = harness.clock.now();
        expect(await store.revoke(made.id)).toBe(true);
        harness.clock.advance(MINUTE_MS);
        expect(await harness.peer.revoke(made.id)).toBe(false);
        expect(await store.findById(made.id)).toEqual({ ...made, revokedAt });
        expect(await harness.peer.findByHash(digests.toString(16).padStart(64, '0'))).toEqual({
          ...made,
          revokedAt,
        });
      });

      it('is told nothing was revoked for an unknown id', async () => {
        expect(await store.revoke(987_654)).toBe(false);
      });

      it('revokes only the key named', async () => {
        const kept = await store.create(newKey({ name: 'kept' }));
        const gone = await store.create(newKey({ name: 'gone' }));
        expect(await store.revoke(gone.id)).toBe(true);
        expect((await store.findById(kept.id))!.revokedAt).toBeNull();
      });

      it('tells exactly one of two admins revoking at once, on two instances, that it was them', async () => {
        // Threat: two audit lines for one revocation, or none, would misreport who did it.
        for (let round = 0; round < 5; round += 1) {
          const made = await store.create(newKey({ name: `race ${round}` }));
          const outcomes = await Promise.all([
            store.revoke(made.id),
            harness.peer.revoke(made.id),
            store.revoke(made.id),
            harness.peer.revoke(made.id),
          ]);
          expect(outcomes.filter(Boolean)).toHaveLength(1);
        }
      });
    });

    describe('touch (last used)', () => {
      it('records a use, then no other within the resolution, then the next one after it', async () => {
        const made = await store.create(newKey());
        const first = new Date(harness.clock.now().getTime() + 10_000);
        await touchAt(made.id, first);
        expect((await harness.peer.findById(made.id))!.lastUsedAt).toEqual(first);

        // Within the minute: no write, whatever instance asks.
        await touchAt(made.id, new Date(first.getTime() + 30_000));
        await harness.peer.touch(
          made.id,
          new Date(first.getTime() + 59_000),
          new Date(first.getTime() - 1_000),
        );
        expect((await store.findById(made.id))!.lastUsedAt).toEqual(first);

        const later = new Date(first.getTime() + MINUTE_MS + 1);
        await touchAt(made.id, later);
        expect((await store.findById(made.id))!.lastUsedAt).toEqual(later);
      });

      it('touches only the key named', async () => {
        const used = await store.create(newKey({ name: 'used' }));
        const idle = await store.create(newKey({ name: 'idle' }));
        await touchAt(used.id, harness.clock.now());
        expect((await store.findById(idle.id))!.lastUsedAt).toBeNull();
      });
    });

    describe('the admin who made a key', () => {
      it('is forgotten when that account is deleted; the key stays, and keeps working', async () => {
        // A key belongs to the site: the admin who made it leaving must neither take it away nor
        // block the deletion of their account.
        const bob = await harness.createAccount('bob', { admin: true });
        const made = await store.create(newKey({ createdBy: bob }));
        const others = await store.create(newKey({ name: 'ada’s' }));
        await harness.deleteAccount(bob);
        expect(await harness.peer.findById(made.id)).toEqual({ ...made, createdBy: null });
        expect(await harness.peer.findByHash(digests.toString(16).padStart(64, '0'))).toMatchObject({
          createdBy: ada,
          id: others.id,
        });
        expect(await store.revoke(made.id)).toBe(true);
      });

      it('may be no one: a key made by the operator has no creator', async () => {
        const made = await store.create(newKey({ createdBy: null }));
        expect((await harness.peer.findById(made.id))!.createdBy).toBeNull();
      });
    });
  });
}
