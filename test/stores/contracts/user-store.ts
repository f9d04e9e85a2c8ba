import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewUser, UserStore } from '../../../src/users/store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every UserStore backend promises (src/users/store.ts): one account per username after NFKC
 * and case folding, however the name is typed and however many registrations race for it.
 */
export interface UserStoreHarness {
  store: UserStore;
  /** The same accounts reached another way: a second connection, as a second instance has. */
  peer: UserStore;
  clock: TestClock;
  close(): Promise<void>;
}

const account = (username: string, overrides: Partial<NewUser> = {}): NewUser => ({
  username,
  passwordHash: `hash-of-${username}`,
  phone: '+12025550142',
  preferredChannel: 'sms',
  ...overrides,
});

export function describeUserStoreContract(
  backend: string,
  open: () => Promise<UserStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`UserStore contract: ${backend}`, () => {
    let harness: UserStoreHarness;
    let store: UserStore;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
    });
    afterEach(() => harness.close());

    describe('create and find', () => {
      it('keeps the default factor, the second step turned off, the recovery codes offer and the phone last used', async () => {
        const created = (await store.create(account('Grace', { phone: '+12025550144' })))!;
        await store.setDefaultFactor(created.id, 'totp');
        await store.setTwoFactorOff(created.id, true);
        await store.markRecoveryCodesOffered(created.id);
        await store.recordPhoneUse(created.id);
        const changed = (await store.findById(created.id))!;
        expect(changed.defaultFactor).toBe('totp');
        expect(changed.twoFactorOffAt).toEqual(harness.clock.now());
        expect(changed.recoveryCodesOfferedAt).toEqual(harness.clock.now());
        expect(changed.phoneLastUsedAt).toEqual(harness.clock.now());
        // The offer is answered once: a later answer does not move its time.
        const firstOffer = changed.recoveryCodesOfferedAt;
        harness.clock.advance(60_000);
        await store.markRecoveryCodesOffered(created.id);
        await store.setDefaultFactor(created.id, null);
        await store.setTwoFactorOff(created.id, false);
        const back = (await store.findById(created.id))!;
        expect(back.recoveryCodesOfferedAt).toEqual(firstOffer);
        expect(back.defaultFactor).toBeNull();
        expect(back.twoFactorOffAt).toBeNull();
      });

      it('keeps an account as registered, and finds it by id and by name on either connection', async () => {
        const created = await store.create(
          account('Ada', { phone: '+12025550143', preferredChannel: 'voice' }),
        );
        expect(created).toEqual({
          id: expect.any(Number),
          username: 'Ada',
          passwordHash: 'hash-of-Ada',
          phone: '+12025550143',
          preferredChannel: 'voice',
          createdAt: harness.clock.now(),
          lastLoginAt: null,
          isAdmin: false,
          // A new account has not proven its number yet (sign-up's code does that).
          phoneVerifiedAt: null,
          email: null,
          emailVerifiedAt: null,
          pendingEmail: null,
          disabledAt: null,
          // Issue 12: the phone is the default factor, the second step is on, no offer answered yet.
          defaultFactor: null,
          twoFactorOffAt: null,
          recoveryCodesOfferedAt: null,
          phoneLastUsedAt: null,
        });
        expect(await store.findById(created!.id)).toEqual(created);
        expect(await harness.peer.findByUsername('Ada')).toEqual(created);
      });

      it('finds nothing for an unknown id or name', async () => {
        expect(await store.findById(4242)).toBeNull();
        expect(await store.findByUsername('nobody')).toBeNull();
      });

      it('gives each account its own id', async () => {
        const ids = [];
        for (const name of ['ann', 'ben', 'cai']) ids.push((await store.create(account(name)))!.id);
        expect(new Set(ids).size).toBe(3);
      });
    });

    describe('usernames', () => {
      // Threat: a stranger registering a look-alike of an admin's name ("ALICE", full-width
      // "ａｌｉｃｅ") and being taken for her, or an owner locked out for typing her name differently.
      it.each(['alice', 'ALICE', 'ａｌｉｃｅ', 'Ａｌｉｃｅ', ' alice '])(
        'refuses %j once "Alice" is registered: it is the same account',
        async (username) => {
          expect(await store.create(account('Alice'))).not.toBeNull();
          expect(await harness.peer.create(account(username))).toBeNull();
        },
      );

      it.each(['alice', 'ALICE', 'ａｌｉｃｅ'])(
        'finds "Alice" when %j is typed, showing it as registered',
        async (typed) => {
          const alice = await store.create(account('Alice'));
          expect(await store.findByUsername(typed)).toEqual(alice);
        },
      );

      it('counts as one account names that differ only by case in any script, or by compatibility forms', async () => {
        expect(await store.create(account('straße'))).not.toBeNull();
        expect(await store.create(account('STRASSE'))).toBeNull();
        expect(await store.create(account('ﬁsh'))).not.toBeNull(); // the "fi" ligature
        expect((await store.findByUsername('FISH'))?.username).toBe('ﬁsh');
        expect(await store.create(account('ΟΔΟΣ'))).not.toBeNull();
        expect(await store.create(account('οδοσ'))).toBeNull();
      });

      it('keeps names that only look alike to a person apart (Cyrillic "а" is not Latin "a")', async () => {
        expect(await store.create(account('alice'))).not.toBeNull();
        expect(await store.create(account('аlice'))).not.toBeNull();
      });

      it('lets exactly one of 20 racing registrations of one name through, whatever case each typed', async () => {
        // Threat: two people registering the same name at the same moment on two instances, both
        // told it is theirs, one of them then owning the other's account.
        const spellings = ['dana', 'DANA', 'Dana', 'ｄａｎａ'];
        const created = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : harness.peer).create(
              account(spellings[i % spellings.length]!, { phone: `+120255501${String(i).padStart(2, '0')}` }),
            ),
          ),
        );
        const winners = created.filter((user) => user !== null);
        expect(winners).toHaveLength(1);
        expect(await store.findByUsername('dana')).toEqual(winners[0]);
        expect(await store.list()).toHaveLength(1);
      });
    });

    describe('updates', () => {
      it('changes the preferred channel', async () => {
        const ann = (await store.create(account('ann')))!;
        await store.setPreferredChannel(ann.id, 'voice');
        expect((await harness.peer.findById(ann.id))?.preferredChannel).toBe('voice');
      });

      it('records each login and answers the one before it', async () => {
        const ann = (await store.create(account('ann')))!;
        const first = harness.clock.now();
        expect(await store.recordLogin(ann.id)).toBeNull();
        harness.clock.advanceMinutes(90);
        expect(await store.recordLogin(ann.id)).toEqual(first);
        expect((await store.findById(ann.id))?.lastLoginAt).toEqual(harness.clock.now());
      });
    });

    describe('listing', () => {
      it('lists accounts newest first', async () => {
        for (const name of ['ann', 'ben', 'cai']) {
          await store.create(account(name));
          harness.clock.advance(1_000);
        }
        await store.create(account('dot'));
        expect((await store.list()).map((user) => user.username)).toEqual(['dot', 'cai', 'ben', 'ann']);
      });

      it('counts the accounts that have proven a number (the toll-fraud guard caps it)', async () => {
        const ann = await store.create(account('ann', { phone: '+12025550142' }));
        const ben = await store.create(account('ben', { phone: '+12025550142' }));
        const cai = await store.create(account('cai', { phone: '+12025550143' }));
        await store.create(account('dot', { phone: '+12025550142' }));
        for (const user of [ann, ben, cai])
          expect(await store.markPhoneProven(user!.id, user!.phone)).toBe(true);
        // dot has not proven it: a stranger's sign-ups must not use up the owner's accounts.
        expect(await harness.peer.countProvenByPhone('+12025550142')).toBe(2);
        expect(await store.countProvenByPhone('+12025550143')).toBe(1);
        expect(await store.countProvenByPhone('+12025550199')).toBe(0);
      });

      it('proves a number once, and only the number the account has', async () => {
        const ann = (await store.create(account('ann', { phone: '+12025550142' })))!;
        expect(await store.markPhoneProven(ann.id, '+12025550143')).toBe(false);
        expect(await store.replaceUnprovenPhone(ann.id, '+12025550143')).toBe(true);
        expect(await harness.peer.markPhoneProven(ann.id, '+12025550143')).toBe(true);
        expect(await store.markPhoneProven(ann.id, '+12025550143')).toBe(false);
        // Proven: the number changes only through the settings page from now on.
        expect(await store.replaceUnprovenPhone(ann.id, '+12025550144')).toBe(false);
        expect((await store.findById(ann.id))?.phoneVerifiedAt).toEqual(harness.clock.now());
      });

      it('puts an admin’s new number in place unproven, only on an account that logged in, and never lets housekeeping delete it', async () => {
        const ann = (await store.create(account('ann', { phone: '+12025550142' })))!;
        await store.markPhoneProven(ann.id, '+12025550142');
        // Never logged in: an unproven account like it is a sign-up, which housekeeping removes.
        expect(await store.replacePhoneToProve(ann.id, '+12025550142', '+12025550143')).toBe(false);
        await store.recordLogin(ann.id);
        // Two admins racing: the second finds the number is no longer the one it saw.
        expect(await store.replacePhoneToProve(ann.id, '+12025550142', '+12025550143')).toBe(true);
        expect(await harness.peer.replacePhoneToProve(ann.id, '+12025550142', '+12025550144')).toBe(false);
        const moved = (await store.findById(ann.id))!;
        expect(moved).toMatchObject({ phone: '+12025550143', phoneVerifiedAt: null });
        // Only the admin's number may be proven: the sign-up's correction is not open to it.
        expect(await store.replaceUnprovenPhone(ann.id, '+12025550144')).toBe(false);
        harness.clock.advance(60_000);
        expect(await store.deleteUnprovenMadeBefore(harness.clock.now(), 10)).toBe(0);
        expect(await harness.peer.markPhoneProven(ann.id, '+12025550143')).toBe(true);
      });

      it('deletes old unproven accounts in batches, never a proven one or one that logged in', async () => {
        const old = [];
        for (const name of ['ann', 'ben', 'cai', 'dot', 'eve'])
          old.push((await store.create(account(name)))!);
        await store.markPhoneProven(old[1]!.id, old[1]!.phone);
        await store.recordLogin(old[2]!.id);
        harness.clock.advance(60_000);
        const cutoff = harness.clock.now();
        // ann, dot and eve are old and unproven; eve, the newest account, goes too.
        expect(await store.deleteUnprovenMadeBefore(cutoff, 2)).toBe(2);
        expect(await harness.peer.deleteUnprovenMadeBefore(cutoff, 10)).toBe(1);
        expect((await store.list()).map((user) => user.username).sort()).toEqual(['ben', 'cai']);
        // Its id is never given to the next sign-up.
        const next = (await store.create(account('fay')))!;
        expect(next.id).toBeGreaterThan(old[4]!.id);
      });
    });

    describe('deleting an account', () => {
      it('deletes it, and never gives its id to a later account, even when it was the newest', async () => {
        const ada = (await store.create(account('ada')))!;
        const ben = (await store.create(account('ben')))!;
        expect(await store.deleteAccount(ben.id)).toBe('deleted');
        expect(await harness.peer.findById(ben.id)).toBeNull();
        expect(await harness.peer.deleteAccount(ben.id)).toBe('no_such_account');
        // The name is free again, under a new id.
        const again = (await harness.peer.create(account('BEN')))!;
        expect(again.id).toBeGreaterThan(ben.id);
        expect(await store.deleteAccount(again.id)).toBe('deleted');
        expect((await store.create(account('cai')))!.id).toBeGreaterThan(again.id);
        expect((await store.findById(ada.id))?.username).toBe('ada');
      });

      it('never deletes the last admin, even when two admins delete themselves at once', async () => {
        const ada = (await store.create(account('ada')))!;
        const ben = (await store.create(account('ben')))!;
        const cai = (await store.create(account('cai')))!;
        await store.setAdmin('ada', true);
        await store.setAdmin('ben', true);
        const outcomes = await Promise.all([store.deleteAccount(ada.id), harness.peer.deleteAccount(ben.id)]);
        expect(outcomes.sort()).toEqual(['deleted', 'last_admin']);
        expect(await store.listAdmins()).toHaveLength(1);
        // Someone who is not an admin may always go.
        expect(await harness.peer.deleteAccount(cai.id)).toBe('deleted');
      });
    });

    describe('admin rights', () => {
      it('grants and revokes by name, matched as login matches it, and lists admins by name', async () => {
        await store.create(account('Zoe'));
        await store.create(account('ann'));
        await store.create(account('ben'));
        expect(await store.setAdmin('ＺＯＥ', true)).toBe(true);
        expect(await store.setAdmin('ANN', true)).toBe(true);
        expect((await harness.peer.listAdmins()).map((user) => user.username)).toEqual(['ann', 'Zoe']);
        expect((await store.findByUsername('zoe'))?.isAdmin).toBe(true);

        expect(await store.setAdmin('zoe', false)).toBe(true);
        expect((await store.listAdmins()).map((user) => user.username)).toEqual(['ann']);
      });

      it('grants only to the account expected, when its id is given', async () => {
        const zoe = (await store.create(account('Zoe')))!;
        expect(await store.setAdmin('zoe', true, zoe.id + 1)).toBe(false);
        expect((await store.findById(zoe.id))?.isAdmin).toBe(false);
        expect(await harness.peer.setAdmin('ZOE', true, zoe.id)).toBe(true);
        expect((await store.findById(zoe.id))?.isAdmin).toBe(true);
      });

      it('says false for a name no account has', async () => {
        expect(await store.setAdmin('nobody', true)).toBe(false);
        expect(await store.listAdmins()).toEqual([]);
      });
    });

    describe('password and phone changes', () => {
      it('stores a new password hash', async () => {
        const ada = (await store.create(account('ada')))!;
        await store.setPasswordHash(ada.id, 'new-hash');
        expect((await harness.peer.findById(ada.id))?.passwordHash).toBe('new-hash');
      });

      it('moves a proven account to its newly proven number, only from the number it still has', async () => {
        const ada = (await store.create(account('ada', { phone: '+12025550171' })))!;
        // Unproven: sign-up's correction is the way to change its number, not this.
        expect(await store.changeProvenPhone(ada.id, '+12025550171', '+12025550172')).toBe(false);
        await store.markPhoneProven(ada.id, '+12025550171');
        harness.clock.advance(60_000);
        const [first, second] = await Promise.all([
          store.changeProvenPhone(ada.id, '+12025550171', '+12025550172'),
          harness.peer.changeProvenPhone(ada.id, '+12025550171', '+12025550173'),
        ]);
        expect([first, second].filter(Boolean)).toHaveLength(1);
        const after = (await store.findById(ada.id))!;
        expect(after.phone).toBe(first ? '+12025550172' : '+12025550173');
        expect(after.phoneVerifiedAt).toEqual(harness.clock.now());
      });
    });

    describe('email addresses', () => {
      it('keeps an address waiting until its link is opened, then makes it the verified one', async () => {
        const ada = (await store.create(account('ada')))!;
        await store.setPendingEmail(ada.id, 'Ada@Example.com');
        expect(await harness.peer.findById(ada.id)).toMatchObject({
          email: null,
          emailVerifiedAt: null,
          pendingEmail: 'Ada@Example.com',
        });
        // Nothing is sent to, or found by, an address that is only waiting.
        expect(await store.findByVerifiedEmail('ada@example.com')).toBeNull();

        expect(await harness.peer.confirmEmail(ada.id, 'Ada@Example.com')).toBe('confirmed');
        expect(await store.findById(ada.id)).toMatchObject({
          email: 'Ada@Example.com',
          emailVerifiedAt: harness.clock.now(),
          pendingEmail: null,
        });
        expect((await store.findByVerifiedEmail(' ADA@example.COM '))?.id).toBe(ada.id);
      });

      it('confirms only the address still waiting: a later change voids the earlier link', async () => {
        const ada = (await store.create(account('ada')))!;
        await store.setPendingEmail(ada.id, 'old@example.com');
        await store.setPendingEmail(ada.id, 'new@example.com');
        expect(await store.confirmEmail(ada.id, 'old@example.com')).toBe('stale');
        expect(await store.confirmEmail(ada.id, 'new@example.com')).toBe('confirmed');
        // Used once: the same link again finds nothing waiting.
        expect(await store.confirmEmail(ada.id, 'new@example.com')).toBe('stale');
      });

      it('keeps the verified address while a new one waits, and removes both on request', async () => {
        const ada = (await store.create(account('ada')))!;
        await store.setPendingEmail(ada.id, 'first@example.com');
        await store.confirmEmail(ada.id, 'first@example.com');
        await store.setPendingEmail(ada.id, 'second@example.com');
        expect(await store.findById(ada.id)).toMatchObject({
          email: 'first@example.com',
          pendingEmail: 'second@example.com',
        });
        await store.removeEmail(ada.id);
        expect(await store.findById(ada.id)).toMatchObject({
          email: null,
          emailVerifiedAt: null,
          pendingEmail: null,
        });
        expect(await store.findByVerifiedEmail('first@example.com')).toBeNull();
      });

      it('gives one mailbox to one account: the second to verify it hears "taken", even racing', async () => {
        const ada = (await store.create(account('ada')))!;
        const ben = (await store.create(account('ben')))!;
        await store.setPendingEmail(ada.id, 'shared@example.com');
        await store.setPendingEmail(ben.id, 'SHARED@example.com');
        const outcomes = await Promise.all([
          store.confirmEmail(ada.id, 'shared@example.com'),
          harness.peer.confirmEmail(ben.id, 'SHARED@example.com'),
        ]);
        expect(outcomes.sort()).toEqual(['confirmed', 'taken']);
        const owner = await store.findByVerifiedEmail('shared@example.com');
        expect([ada.id, ben.id]).toContain(owner?.id);
      });
    });

    describe('disabling', () => {
      it('disables an account from now, seen on either connection, and enables it again', async () => {
        const ann = (await store.create(account('ann')))!;
        expect(await harness.peer.disable(ann.id)).toBe('disabled');
        expect((await store.findById(ann.id))?.disabledAt).toEqual(harness.clock.now());
        expect(await store.disable(ann.id)).toBe('already_disabled');

        expect(await harness.peer.enable(ann.id)).toBe(true);
        expect((await store.findByUsername('ann'))?.disabledAt).toBeNull();
        expect(await store.enable(ann.id)).toBe(false);
      });

      it('never disables an admin, even as two disables race (no admin can lock the others out)', async () => {
        // Threat: one admin (or a stolen admin session) disables every other admin, or two admins
        // disable each other at the same moment and the site is left with none.
        const zoe = (await store.create(account('zoe')))!;
        const ann = (await store.create(account('ann')))!;
        await store.setAdmin('zoe', true);
        await store.setAdmin('ann', true);
        expect(await Promise.all([store.disable(zoe.id), harness.peer.disable(ann.id)])).toEqual([
          'is_admin',
          'is_admin',
        ]);
        expect((await store.listAdmins()).map((user) => user.disabledAt)).toEqual([null, null]);
      });

      it('says so for an account that does not exist', async () => {
        expect(await store.disable(999_999)).toBe('no_such_account');
        expect(await store.enable(999_999)).toBe(false);
      });
    });
  });
}
