import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FactorStore, NewFactor, PasskeyFactor, TotpFactor } from '../../../src/factors/store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every FactorStore backend promises (src/factors/store.ts): an account's apps and passkeys
 * are reached only through that account, a kind's cap holds however many adds race, and the two
 * writes that stop a replay (a TOTP step, a passkey's counter) are single conditional updates, so
 * two requests with the same code or assertion let exactly one through, whichever instance each
 * reaches.
 */
export interface FactorStoreHarness {
  store: FactorStore;
  /** The same factors reached another way: a second connection, as a second instance has. */
  peer: FactorStore;
  clock: TestClock;
  /** Makes an account factors can belong to; returns its id. */
  createAccount(name: string): Promise<number>;
  /** Deletes the account as the person's own deletion does (users.deleteAccount). */
  deleteAccount(id: number): Promise<void>;
  close(): Promise<void>;
}

const ONE_APP = { maxPerKind: 1 };
const TEN_PASSKEYS = { maxPerKind: 10 };

export function describeFactorStoreContract(
  backend: string,
  open: () => Promise<FactorStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`FactorStore contract: ${backend}`, () => {
    let harness: FactorStoreHarness;
    let store: FactorStore;
    let ada: number;
    let bob: number;
    let credentials = 0;

    const app = (userId: number, overrides: Partial<NewFactor & { kind: 'totp' }> = {}): NewFactor => ({
      kind: 'totp',
      userId,
      label: 'Authenticator app',
      sealedSecret: 'v1.sealed-secret',
      lastStep: null,
      ...overrides,
    });
    const passkey = (
      userId: number,
      overrides: Partial<NewFactor & { kind: 'passkey' }> = {},
    ): NewFactor => ({
      kind: 'passkey',
      userId,
      label: 'Laptop',
      credentialId: `credential-${(credentials += 1)}`,
      publicKey: 'cose-public-key',
      signCount: 0,
      transports: ['internal', 'hybrid'],
      userVerified: true,
      ...overrides,
    });
    const addApp = async (userId: number, lastStep: number | null = null) =>
      (await store.add(app(userId, { lastStep }), ONE_APP)) as TotpFactor;
    const addPasskey = async (userId: number, signCount = 0) =>
      (await store.add(passkey(userId, { signCount }), TEN_PASSKEYS)) as PasskeyFactor;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      ada = await harness.createAccount('ada');
      bob = await harness.createAccount('bob');
    });
    afterEach(() => harness.close());

    describe('add, list and find', () => {
      it('keeps an app and a passkey as they were given, with when they were added, oldest first', async () => {
        const added = await addApp(ada, 41);
        expect(added).toEqual({
          id: expect.any(Number),
          kind: 'totp',
          userId: ada,
          label: 'Authenticator app',
          sealedSecret: 'v1.sealed-secret',
          lastStep: 41,
          createdAt: harness.clock.now(),
          lastUsedAt: null,
        });
        harness.clock.advance(60_000);
        const key = await addPasskey(ada, 7);
        expect(key).toEqual({
          id: expect.any(Number),
          kind: 'passkey',
          userId: ada,
          label: 'Laptop',
          credentialId: key.credentialId,
          publicKey: 'cose-public-key',
          signCount: 7,
          transports: ['internal', 'hybrid'],
          userVerified: true,
          createdAt: harness.clock.now(),
          lastUsedAt: null,
        });
        expect(await harness.peer.listForUser(ada)).toEqual([added, key]);
        expect(await harness.peer.findById(ada, added.id)).toEqual(added);
        expect(await harness.peer.findByCredentialId(key.credentialId)).toEqual(key);
      });

      it('keeps a passkey without transports, and one whose user was not verified', async () => {
        const key = (await store.add(
          passkey(ada, { transports: [], userVerified: false }),
          TEN_PASSKEYS,
        )) as PasskeyFactor;
        expect(await store.findById(ada, key.id)).toMatchObject({ transports: [], userVerified: false });
      });

      it('shows an account only its own factors: another account’s id finds nothing', async () => {
        const adas = await addApp(ada);
        const bobs = await addPasskey(bob);
        expect(await store.listForUser(ada)).toEqual([adas]);
        expect(await store.listForUser(bob)).toEqual([bobs]);
        expect(await store.findById(bob, adas.id)).toBeNull();
        expect(await store.findById(ada, bobs.id)).toBeNull();
        expect(await store.findById(ada, adas.id + bobs.id + 1000)).toBeNull();
      });

      it('finds a passkey by its credential id only, never an app', async () => {
        await addApp(ada);
        expect(await store.findByCredentialId('credential-unknown')).toBeNull();
        // An app has no credential id: looking one up never lands on it.
        expect(await store.findByCredentialId('')).toBeNull();
      });
    });

    describe('the cap per kind', () => {
      it('refuses one more of a kind past the cap, while another kind and another account still add', async () => {
        expect(await addApp(ada)).not.toBeNull();
        expect(await store.add(app(ada), ONE_APP)).toBeNull();
        expect(await store.add(passkey(ada), { maxPerKind: 1 })).not.toBeNull();
        expect(await store.add(passkey(ada), { maxPerKind: 1 })).toBeNull();
        expect(await store.add(app(bob), ONE_APP)).not.toBeNull();
        expect((await store.listForUser(ada)).map((factor) => factor.kind)).toEqual(['totp', 'passkey']);
      });

      // Through one instance: on PostgreSQL its pool runs them on several connections at once; SQLite
      // serves one instance, whose one connection takes the transactions in turn.
      it('holds when many adds race: exactly the cap get in', async () => {
        const apps = await Promise.all(Array.from({ length: 5 }, () => store.add(app(ada), ONE_APP)));
        expect(apps.filter((added) => added !== null)).toHaveLength(1);
        const keys = await Promise.all(
          Array.from({ length: 6 }, () => store.add(passkey(ada), { maxPerKind: 3 })),
        );
        expect(keys.filter((added) => added !== null)).toHaveLength(3);
        expect(await harness.peer.listForUser(ada)).toHaveLength(4);
      });

      it('counts again after a removal', async () => {
        const first = await addApp(ada);
        expect(await store.remove(ada, first.id)).toBe(true);
        expect(await store.add(app(ada), ONE_APP)).not.toBeNull();
      });
    });

    it('refuses a credential id already registered, to this account or another', async () => {
      await store.add(passkey(ada, { credentialId: 'same-credential' }), TEN_PASSKEYS);
      expect(await store.add(passkey(bob, { credentialId: 'same-credential' }), TEN_PASSKEYS)).toBeNull();
      expect(await store.add(passkey(ada, { credentialId: 'same-credential' }), TEN_PASSKEYS)).toBeNull();
      expect(await store.listForUser(bob)).toEqual([]);
      expect((await store.findByCredentialId('same-credential'))?.userId).toBe(ada);
    });

    describe('rename and remove', () => {
      it('renames and removes only through the owner', async () => {
        const adas = await addApp(ada);
        expect(await store.rename(bob, adas.id, 'Stolen')).toBe(false);
        expect(await store.remove(bob, adas.id)).toBe(false);
        expect(await store.findById(ada, adas.id)).toEqual(adas);

        expect(await harness.peer.rename(ada, adas.id, 'Phone app')).toBe(true);
        expect((await store.findById(ada, adas.id))?.label).toBe('Phone app');
        expect(await harness.peer.remove(ada, adas.id)).toBe(true);
        expect(await store.findById(ada, adas.id)).toBeNull();
        expect(await store.remove(ada, adas.id)).toBe(false);
        expect(await store.rename(ada, adas.id, 'Gone')).toBe(false);
      });

      it('keeps one of the given kinds: refuses to remove the last, and of two racing removals lets one through', async () => {
        const key = await store.add(passkey(ada), TEN_PASSKEYS);
        const phoneApp = await addApp(ada);
        const KEEP = { keepOneOf: ['passkey', 'totp'] as const };
        // Two at once (two tabs), each of which would leave the other as the last one. Through one
        // instance, as in the cap's race: PostgreSQL runs them on two connections at once.
        const removed = await Promise.all([
          store.remove(ada, key!.id, KEEP),
          store.remove(ada, phoneApp.id, KEEP),
        ]);
        expect(removed.filter(Boolean)).toHaveLength(1);
        const [left] = await store.listForUser(ada);
        expect(await store.listForUser(ada)).toHaveLength(1);
        expect(await store.remove(ada, left!.id, KEEP)).toBe(false);
        expect(await store.remove(ada, left!.id, { keepOneOf: [] })).toBe(false);
        expect(await store.findById(ada, left!.id)).not.toBeNull();
        // Without the condition, the last one goes.
        expect(await store.remove(ada, left!.id)).toBe(true);
      });

      it('removes every factor of one account and says how many, leaving the others', async () => {
        await addApp(ada);
        await addPasskey(ada);
        await addPasskey(ada);
        const bobs = await addPasskey(bob);
        expect(await store.removeAllForUser(ada)).toBe(3);
        expect(await store.listForUser(ada)).toEqual([]);
        expect(await store.removeAllForUser(ada)).toBe(0);
        expect(await store.listForUser(bob)).toEqual([bobs]);
      });

      it('forgets the factors of a deleted account', async () => {
        const key = await addPasskey(ada);
        await addApp(ada);
        const bobs = await addApp(bob);
        await harness.deleteAccount(ada);
        expect(await store.listForUser(ada)).toEqual([]);
        expect(await store.findByCredentialId(key.credentialId)).toBeNull();
        expect(await store.listForUser(bob)).toEqual([bobs]);
      });
    });

    describe('acceptTotpStep', () => {
      it('accepts a step once, then only later steps, and records when', async () => {
        const adas = await addApp(ada);
        harness.clock.advance(90_000);
        const usedAt = harness.clock.now();
        expect(await store.acceptTotpStep(adas.id, 100, usedAt)).toBe(true);
        expect(await store.findById(ada, adas.id)).toMatchObject({ lastStep: 100, lastUsedAt: usedAt });
        expect(await store.acceptTotpStep(adas.id, 100, usedAt)).toBe(false);
        expect(await harness.peer.acceptTotpStep(adas.id, 99, usedAt)).toBe(false);
        expect(await store.acceptTotpStep(adas.id, 101, usedAt)).toBe(true);
        expect(await store.findById(ada, adas.id)).toMatchObject({ lastStep: 101 });
      });

      it('refuses a step at or before the one marked used at enrolment', async () => {
        const adas = await addApp(ada, 500);
        expect(await store.acceptTotpStep(adas.id, 500, harness.clock.now())).toBe(false);
        expect(await store.acceptTotpStep(adas.id, 499, harness.clock.now())).toBe(false);
        expect(await store.acceptTotpStep(adas.id, 501, harness.clock.now())).toBe(true);
      });

      it('lets exactly one of many racing accepts of the same step through, on either connection', async () => {
        const adas = await addApp(ada);
        const accepts = await Promise.all(
          Array.from({ length: 6 }, (_, index) =>
            (index % 2 ? harness.peer : store).acceptTotpStep(adas.id, 200, harness.clock.now()),
          ),
        );
        expect(accepts.filter(Boolean)).toHaveLength(1);
      });

      it('never moves a passkey, and nothing for an unknown factor', async () => {
        const key = await addPasskey(ada);
        expect(await store.acceptTotpStep(key.id, 1, harness.clock.now())).toBe(false);
        expect(await store.acceptTotpStep(key.id + 1000, 1, harness.clock.now())).toBe(false);
        expect(await store.findById(ada, key.id)).toEqual(key);
      });
    });

    describe('recordPasskeyUse', () => {
      it('takes a counter that moved forward, and records when', async () => {
        const key = await addPasskey(ada, 5);
        harness.clock.advance(60_000);
        expect(await store.recordPasskeyUse(key.id, 5, 6, harness.clock.now())).toBe(true);
        expect(await store.findById(ada, key.id)).toMatchObject({
          signCount: 6,
          lastUsedAt: harness.clock.now(),
        });
      });

      it('takes 0 after 0 (passkeys that keep no counter), again and again', async () => {
        const key = await addPasskey(ada, 0);
        expect(await store.recordPasskeyUse(key.id, 0, 0, harness.clock.now())).toBe(true);
        expect(await store.recordPasskeyUse(key.id, 0, 0, harness.clock.now())).toBe(true);
      });

      it('refuses a counter that stood still or went back (a cloned authenticator)', async () => {
        const key = await addPasskey(ada, 5);
        expect(await store.recordPasskeyUse(key.id, 5, 5, harness.clock.now())).toBe(false);
        expect(await store.recordPasskeyUse(key.id, 5, 4, harness.clock.now())).toBe(false);
        expect(await store.recordPasskeyUse(key.id, 5, 0, harness.clock.now())).toBe(false);
        expect(await store.findById(ada, key.id)).toEqual(key);
      });

      it('refuses a use read before another one moved the counter (a stale previous count)', async () => {
        const key = await addPasskey(ada, 5);
        expect(await harness.peer.recordPasskeyUse(key.id, 5, 6, harness.clock.now())).toBe(true);
        expect(await store.recordPasskeyUse(key.id, 5, 7, harness.clock.now())).toBe(false);
        expect(await store.findById(ada, key.id)).toMatchObject({ signCount: 6 });
      });

      it('lets exactly one of racing uses read at the same count through', async () => {
        const key = await addPasskey(ada, 5);
        const uses = await Promise.all(
          Array.from({ length: 6 }, (_, index) =>
            (index % 2 ? harness.peer : store).recordPasskeyUse(key.id, 5, 6 + index, harness.clock.now()),
          ),
        );
        expect(uses.filter(Boolean)).toHaveLength(1);
      });

      it('never touches an app', async () => {
        const adas = await addApp(ada);
        expect(await store.recordPasskeyUse(adas.id, 0, 1, harness.clock.now())).toBe(false);
        expect(await store.findById(ada, adas.id)).toEqual(adas);
      });
    });
  });
}
