import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RememberedBrowserStore } from '../../../src/auth/remembered-browser-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every RememberedBrowserStore backend promises (src/auth/remembered-browser-store.ts):
 * digests only, a token that rotates once however many requests race with it, an account's own
 * rows only, and a cap that parallel adds cannot pass.
 */
export interface RememberedBrowserStoreHarness {
  store: RememberedBrowserStore;
  /** The same rows reached another way: a second connection, as a second instance has. */
  peer: RememberedBrowserStore;
  clock: TestClock;
  /** Makes an account the rows can belong to; returns its id. */
  addAccount(): Promise<number>;
  /** Every token_hash the backend holds. */
  storedDigests(): Promise<string[]>;
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60_000;
const digest = () => createHash('sha256').update(randomBytes(32)).digest('hex');

export function describeRememberedBrowserStoreContract(
  backend: string,
  open: () => Promise<RememberedBrowserStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`RememberedBrowserStore contract: ${backend}`, () => {
    let harness: RememberedBrowserStoreHarness;
    let store: RememberedBrowserStore;
    let ada: number;
    const inDays = (days: number) => new Date(harness.clock.now().getTime() + days * DAY_MS);
    const remember = (userId: number, tokenHash = digest(), label = 'Firefox on Windows') =>
      store.add({ userId, tokenHash, label, expiresAt: inDays(30) }, { maxPerAccount: 10 });

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      ada = await harness.addAccount();
    });
    afterEach(() => harness.close());

    it('keeps the digest it is given, and lists the account’s browsers with their label and times', async () => {
      const tokenHash = digest();
      const added = await remember(ada, tokenHash);
      const expected = {
        id: added.id,
        userId: ada,
        label: 'Firefox on Windows',
        createdAt: harness.clock.now(),
        lastUsedAt: harness.clock.now(),
        expiresAt: inDays(30),
      };
      expect(added).toEqual(expected);
      expect(await harness.storedDigests()).toEqual([tokenHash]);
      expect(await harness.peer.listForUser(ada)).toEqual([expected]);
      expect(await store.isLive(tokenHash)).toBe(true);
      expect(await store.isLive(digest())).toBe(false);
    });

    it('rotates a token once: the new digest replaces the old, on either connection', async () => {
      const first = digest();
      const added = await remember(ada, first);
      harness.clock.advance(DAY_MS);
      const second = digest();
      const rotated = await harness.peer.rotate({
        userId: ada,
        tokenHash: first,
        newTokenHash: second,
        usedAt: harness.clock.now(),
      });
      expect(rotated).toMatchObject({
        id: added.id,
        lastUsedAt: harness.clock.now(),
        expiresAt: added.expiresAt,
      });
      expect(await harness.storedDigests()).toEqual([second]);
      expect(
        await store.rotate({
          userId: ada,
          tokenHash: first,
          newTokenHash: digest(),
          usedAt: harness.clock.now(),
        }),
      ).toBeNull();
      expect(
        await store.rotate({
          userId: ada,
          tokenHash: second,
          newTokenHash: digest(),
          usedAt: harness.clock.now(),
        }),
      ).not.toBeNull();
    });

    it('lets exactly one of many racing uses of one token rotate it', async () => {
      // Threat: a copied cookie used at the same moment as the real one, both skipping the code.
      const token = digest();
      await remember(ada, token);
      const uses = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 ? harness.peer : store).rotate({
            userId: ada,
            tokenHash: token,
            newTokenHash: digest(),
            usedAt: harness.clock.now(),
          }),
        ),
      );
      expect(uses.filter((use) => use !== null)).toHaveLength(1);
      expect(await store.listForUser(ada)).toHaveLength(1);
    });

    it('never rotates another account’s token, nor an expired one', async () => {
      const bo = await harness.addAccount();
      const adasToken = digest();
      await remember(ada, adasToken);
      const use = (userId: number) =>
        store.rotate({ userId, tokenHash: adasToken, newTokenHash: digest(), usedAt: harness.clock.now() });
      expect(await use(bo)).toBeNull();
      expect(await store.isLive(adasToken)).toBe(true);

      harness.clock.advance(30 * DAY_MS);
      expect(await use(ada)).toBeNull();
      expect(await store.isLive(adasToken)).toBe(false);
      expect(await store.listForUser(ada)).toEqual([]);
    });

    it('keeps at most the cap per account: the oldest go, even when adds race', async () => {
      const bo = await harness.addAccount();
      const bosBrowser = await remember(bo);
      const first = await remember(ada);
      harness.clock.advance(1000);
      for (let index = 0; index < 10; index += 1) {
        harness.clock.advance(1000);
        await remember(ada);
      }
      const kept = await store.listForUser(ada);
      expect(kept).toHaveLength(10);
      expect(kept.map((browser) => browser.id)).not.toContain(first.id);

      // Racing on one handle: its pool (PostgreSQL) runs them at once. (Two SQLite handles in one
      // process cannot race a transaction: the synchronous driver would wait on itself.)
      await Promise.all(
        Array.from({ length: 8 }, () =>
          store.add(
            { userId: ada, tokenHash: digest(), label: 'Chrome', expiresAt: inDays(30) },
            { maxPerAccount: 10 },
          ),
        ),
      );
      expect(await store.listForUser(ada)).toHaveLength(10);
      // Another account's browsers are not counted, nor trimmed.
      expect(await store.listForUser(bo)).toEqual([bosBrowser]);
    });

    it('lists the most recently used first, and only unexpired ones', async () => {
      const older = digest();
      const olderRow = await remember(ada, older, 'Safari on iPhone');
      harness.clock.advance(DAY_MS);
      const newer = await remember(ada, digest(), 'Chrome on Android');
      expect((await store.listForUser(ada)).map((browser) => browser.id)).toEqual([newer.id, olderRow.id]);
      harness.clock.advance(DAY_MS);
      await store.rotate({
        userId: ada,
        tokenHash: older,
        newTokenHash: digest(),
        usedAt: harness.clock.now(),
      });
      expect((await store.listForUser(ada)).map((browser) => browser.id)).toEqual([olderRow.id, newer.id]);
      harness.clock.advance(29 * DAY_MS - 1);
      expect((await store.listForUser(ada)).map((browser) => browser.id)).toEqual([newer.id]);
    });

    it('forgets one browser of its own account only, or every one', async () => {
      const bo = await harness.addAccount();
      const adas = await remember(ada);
      await remember(ada);
      const bos = await remember(bo);
      expect(await store.remove(ada, bos.id)).toBe(false);
      expect(await store.remove(ada, adas.id)).toBe(true);
      expect(await store.remove(ada, adas.id)).toBe(false);
      expect(await store.listForUser(ada)).toHaveLength(1);
      expect(await harness.peer.removeAllForUser(ada)).toBe(1);
      expect(await store.removeAllForUser(ada)).toBe(0);
      expect(await store.listForUser(bo)).toEqual([bos]);
    });

    it('deletes expired rows in batches for housekeeping', async () => {
      for (let index = 0; index < 3; index += 1) await remember(ada);
      const bo = await harness.addAccount();
      await store.add(
        { userId: bo, tokenHash: digest(), label: 'Edge', expiresAt: inDays(60) },
        { maxPerAccount: 10 },
      );
      const later = new Date(harness.clock.now().getTime() + 31 * DAY_MS);
      expect(await store.deleteExpired(later, 2)).toBe(2);
      expect(await store.deleteExpired(later, 2)).toBe(1);
      expect(await store.deleteExpired(later, 2)).toBe(0);
      expect(await harness.storedDigests()).toHaveLength(1);
    });
  });
}
