import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Challenge, ChallengeStore, NewChallenge } from '../../../src/mfa/challenge-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every ChallengeStore backend promises (src/mfa/challenge-store.ts): each rule that must
 * hold across requests is one conditional write, so the races below have exactly one winner
 * whichever instance each request reaches.
 */
export interface ChallengeStoreHarness {
  store: ChallengeStore;
  /** The same challenges reached another way: a second connection, as a second instance has. */
  peer: ChallengeStore;
  clock: TestClock;
  /** An account the store may hold challenges for (a real row where the backend checks). */
  createUserId(): Promise<number>;
  close(): Promise<void>;
}

const CODE_TTL_MS = 5 * 60_000;
const MAX_ATTEMPTS = 5;

export function describeChallengeStoreContract(
  backend: string,
  open: () => Promise<ChallengeStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`ChallengeStore contract: ${backend}`, () => {
    let harness: ChallengeStoreHarness;
    let store: ChallengeStore;
    let userId: number;

    const newChallenge = (overrides: Partial<NewChallenge> = {}): NewChallenge => {
      const sentAt = harness.clock.now().getTime();
      return {
        // Random, as the service makes them: an order of ids must never stand in for the order of sending.
        id: randomBytes(16).toString('base64url'),
        userId,
        scope: 'login',
        phone: '+12025550142',
        channel: 'sms',
        provider: 'console',
        sentAt,
        expiresAt: sentAt + CODE_TTL_MS,
        ...overrides,
      };
    };
    const send = (overrides: Partial<NewChallenge> = {}) => store.create(newChallenge(overrides));
    const ids = (challenges: Array<Challenge | null>) => challenges.map((c) => c?.id ?? null);

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      userId = await harness.createUserId();
    });
    afterEach(() => harness.close());

    describe('create and findById', () => {
      it('returns a new challenge open, with no attempt used, and finds it by id as created', async () => {
        const created = await send({ handle: 'VE0123', channel: 'voice', provider: 'twilio' });
        expect(created).toMatchObject({ wrongAttempts: 0, closedAt: null, closeReason: null });
        expect(await store.findById(created.id)).toEqual(created);
        expect(await harness.peer.findById(created.id)).toEqual(created);
      });

      it('leaves out a handle the provider did not give', async () => {
        const created = await send();
        const found = await store.findById(created.id);
        expect(found).toEqual(created);
        expect(found).not.toHaveProperty('handle');
      });

      it('finds nothing for an unknown id', async () => {
        expect(await store.findById('no-such-challenge')).toBeNull();
      });
    });

    describe('findOpen', () => {
      it('finds the newest open challenge of the account in the scope', async () => {
        await send();
        harness.clock.advance(1_000);
        const newer = await send();
        expect((await store.findOpen(userId, 'login'))?.id).toBe(newer.id);
      });

      it('takes the one created last when several were sent in the same millisecond', async () => {
        for (let i = 0; i < 7; i += 1) await send();
        const last = await send();
        expect((await store.findOpen(userId, 'login'))?.id).toBe(last.id);
      });

      it('skips closed challenges, and finds nothing once all are closed', async () => {
        const older = await send();
        harness.clock.advance(1_000);
        const newer = await send();
        await store.close(newer.id, 'used_up');
        expect((await store.findOpen(userId, 'login'))?.id).toBe(older.id);
        await store.close(older.id, 'accepted');
        expect(await store.findOpen(userId, 'login')).toBeNull();
      });

      it('keeps scopes and accounts apart', async () => {
        const other = await harness.createUserId();
        const admin = await send({ scope: 'admin' });
        await send({ userId: other });
        expect(await store.findOpen(userId, 'login')).toBeNull();
        expect((await store.findOpen(userId, 'admin'))?.id).toBe(admin.id);
      });

      it('still finds an open challenge past its expiry: expiry is the service’s rule, closing is the store’s', async () => {
        const sent = await send();
        harness.clock.advance(CODE_TTL_MS + 1);
        expect((await store.findOpen(userId, 'login'))?.id).toBe(sent.id);
      });
    });

    describe('closeOthers', () => {
      it('closes every other open challenge of the account in the scope and returns those', async () => {
        const first = await send();
        const second = await send();
        const kept = await send();
        harness.clock.advance(2_000);
        const closed = await store.closeOthers(userId, 'login', kept.id, 'replaced');
        const closedAt = harness.clock.now().getTime();
        expect(ids(closed).sort()).toEqual([first.id, second.id].sort());
        for (const challenge of closed)
          expect(challenge).toMatchObject({ closedAt, closeReason: 'replaced' });
        expect(await store.findById(first.id)).toMatchObject({ closedAt, closeReason: 'replaced' });
        expect((await store.findOpen(userId, 'login'))?.id).toBe(kept.id);
      });

      it('leaves other scopes, other accounts and closed challenges alone', async () => {
        const other = await harness.createUserId();
        const admin = await send({ scope: 'admin' });
        const stranger = await send({ userId: other });
        const accepted = await send();
        await store.close(accepted.id, 'accepted');
        const kept = await send();
        expect(await store.closeOthers(userId, 'login', kept.id, 'replaced')).toEqual([]);
        expect((await store.findById(admin.id))?.closedAt).toBeNull();
        expect((await store.findById(stranger.id))?.closedAt).toBeNull();
        expect(await store.findById(accepted.id)).toMatchObject({ closeReason: 'accepted' });
      });
    });

    describe('attempts', () => {
      it('reserves attempts up to the cap, then refuses', async () => {
        const sent = await send();
        const taken: Array<number | null> = [];
        for (let i = 0; i < MAX_ATTEMPTS + 1; i += 1)
          taken.push(await store.reserveAttempt(sent.id, MAX_ATTEMPTS));
        expect(taken).toEqual([1, 2, 3, 4, 5, null]);
        expect((await store.findById(sent.id))?.wrongAttempts).toBe(MAX_ATTEMPTS);
      });

      it('refuses an attempt at a closed or unknown challenge', async () => {
        const sent = await send();
        await store.close(sent.id, 'replaced');
        expect(await store.reserveAttempt(sent.id, MAX_ATTEMPTS)).toBeNull();
        expect(await store.reserveAttempt('no-such-challenge', MAX_ATTEMPTS)).toBeNull();
        expect((await store.findById(sent.id))?.wrongAttempts).toBe(0);
      });

      it('gives back an attempt that was never compared, never below zero', async () => {
        const sent = await send();
        await store.reserveAttempt(sent.id, MAX_ATTEMPTS);
        await store.reserveAttempt(sent.id, MAX_ATTEMPTS);
        await store.releaseAttempt(sent.id);
        expect((await store.findById(sent.id))?.wrongAttempts).toBe(1);
        await store.releaseAttempt(sent.id);
        await store.releaseAttempt(sent.id);
        expect((await store.findById(sent.id))?.wrongAttempts).toBe(0);
        await store.releaseAttempt('no-such-challenge');
        expect(await store.findById('no-such-challenge')).toBeNull();
      });
    });

    describe('close', () => {
      it('closes once, with the time and reason, and says so only the first time', async () => {
        const sent = await send();
        harness.clock.advance(30_000);
        expect(await store.close(sent.id, 'accepted')).toBe(true);
        expect(await store.close(sent.id, 'expired')).toBe(false);
        expect(await store.findById(sent.id)).toMatchObject({
          closedAt: harness.clock.now().getTime(),
          closeReason: 'accepted',
        });
      });

      it('says false for an unknown challenge', async () => {
        expect(await store.close('no-such-challenge', 'accepted')).toBe(false);
      });
    });

    describe('housekeeping', () => {
      it('never deletes a challenge before it has expired', async () => {
        const sent = await send();
        expect(await store.deleteExpired(new Date(sent.expiresAt), 500)).toBe(0);
        expect(await store.findById(sent.id)).not.toBeNull();
      });
    });

    describe('racing requests, on two instances', () => {
      const onEither = (i: number) => (i % 2 === 0 ? store : harness.peer);

      it('lets 20 parallel guesses take exactly the 5 attempts a code allows', async () => {
        // Threat: parallel wrong guesses each reading "4 used" would together make many more than 5.
        const sent = await send();
        const taken = await Promise.all(
          Array.from({ length: 20 }, (_, i) => onEither(i).reserveAttempt(sent.id, MAX_ATTEMPTS)),
        );
        expect(taken.filter((n) => n !== null).sort()).toEqual([1, 2, 3, 4, 5]);
        expect((await store.findById(sent.id))?.wrongAttempts).toBe(MAX_ATTEMPTS);
      });

      it('lets exactly one of 10 parallel acceptances close the challenge', async () => {
        // Threat: the same right code sent to two instances at once signing in twice.
        const sent = await send();
        const closed = await Promise.all(
          Array.from({ length: 10 }, (_, i) => onEither(i).close(sent.id, 'accepted')),
        );
        expect(closed.filter(Boolean)).toHaveLength(1);
      });

      it('lets either the acceptance or a newer code win, never both', async () => {
        // Threat: a code accepted at the very moment a newer one replaced it.
        // Ten accounts at once, each with its own race.
        const results = await Promise.all(
          Array.from({ length: 10 }, async () => {
            const account = await harness.createUserId();
            const old = await send({ userId: account });
            const newer = newChallenge({ userId: account });
            await harness.peer.create(newer);
            const [accepted, replaced] = await Promise.all([
              store.close(old.id, 'accepted'),
              harness.peer.closeOthers(account, 'login', newer.id, 'replaced'),
            ]);
            return {
              accepted,
              replacedOld: ids(replaced).includes(old.id),
              final: await store.findById(old.id),
            };
          }),
        );
        for (const { accepted, replacedOld, final } of results) {
          expect(accepted).not.toBe(replacedOld);
          expect(final?.closeReason).toBe(accepted ? 'accepted' : 'replaced');
        }
      });

      it('closes each older challenge once when two instances replace at the same time', async () => {
        const older = await Promise.all([send(), send(), send()]);
        const [a, b] = await Promise.all([send(), harness.peer.create(newChallenge())]);
        const [closedByA, closedByB] = await Promise.all([
          store.closeOthers(userId, 'login', a.id, 'replaced'),
          harness.peer.closeOthers(userId, 'login', b.id, 'replaced'),
        ]);
        const all = [...ids(closedByA), ...ids(closedByB)];
        expect(new Set(all).size).toBe(all.length);
        for (const challenge of older) expect(all).toContain(challenge.id);
      });
    });
  });
}
