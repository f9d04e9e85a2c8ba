import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdminStepUpFactor } from '../../src/factors/config.js';
import {
  createStageFactors,
  openStage,
  type FactorCheckers,
  type StageKind,
} from '../../src/factors/stage-factors.js';
import type { FactorStore } from '../../src/factors/store.js';
import type { Channel } from '../../src/mfa/provider.js';
import { createSqlFactorStore } from '../../src/stores/sql/factor-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { User } from '../../src/users/store.js';
import { createTestClock } from '../helpers/clock.js';
import { insertAlice, openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

/**
 * Which factors each code page accepts (issue 12): recovery codes only at login and reset, the
 * admin step-up only what ADMIN_STEP_UP_FACTORS lists (strongest first), sign-up and a new number
 * only a code to that number; and only factors the account has, whose checker is wired.
 */
describe('the factors each stage accepts', () => {
  let sql: TestSqlDatabase;
  let factors: FactorStore;
  let alice: User;
  let recoveryLeft: number;

  // The checkers' behaviour is not what these tests look at: only whether each one is wired.
  const checkers: Required<FactorCheckers> = {
    totp: { check: async () => ({ ok: false, reason: 'wrong' }) },
    recoveryCodes: {
      remaining: async () => recoveryLeft,
      use: async () => ({ ok: false }),
    },
    passkeys: {
      authenticationOptions: async () => ({ challenge: 'c' }),
      finishAuthentication: async () => ({ ok: false, reason: 'invalid', message: 'no' }),
    },
  };

  function stageFactors(
    adminStepUpFactors: AdminStepUpFactor[] = ['passkey', 'totp', 'sms', 'voice'],
    channels: Channel[] = ['sms', 'voice'],
    wired: FactorCheckers = checkers,
  ) {
    return createStageFactors({ factors, checkers: wired, channels: () => channels, adminStepUpFactors });
  }

  async function giveAlice(kind: 'totp' | 'passkey', passkey: { userVerified?: boolean } = {}) {
    const added =
      kind === 'totp'
        ? await factors.add(
            { kind, userId: 1, label: 'Phone app', sealedSecret: 'sealed', lastStep: null },
            { maxPerKind: 1 },
          )
        : await factors.add(
            {
              kind,
              userId: 1,
              label: 'Laptop',
              credentialId: `cred-${Math.random()}`,
              publicKey: 'key',
              signCount: 0,
              transports: ['internal'],
              userVerified: passkey.userVerified ?? true,
            },
            { maxPerKind: 10 },
          );
    expect(added).not.toBeNull();
  }

  const methods = async (kind: StageKind, built = stageFactors()) =>
    (await built.options(alice, kind)).map((option) =>
      option.method === 'phone' ? option.channel : option.method,
    );

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    await insertAlice(sql.database);
    const clock = createTestClock();
    factors = createSqlFactorStore(sql.database, clock);
    alice = (await createSqlUserStore(sql.database, clock).findById(1))!;
    recoveryLeft = 0;
  });
  afterEach(() => sql.close());

  it('offers only the phone to an account with nothing else, and only the phone to sign-up and a new number', async () => {
    for (const kind of ['login', 'reset', 'settings', 'admin'] as const) {
      expect(await methods(kind)).toEqual(['sms', 'voice']);
    }
    await giveAlice('totp');
    await giveAlice('passkey');
    recoveryLeft = 10;
    expect(await methods('signup')).toEqual(['sms', 'voice']);
    expect(await methods('phone_change')).toEqual(['sms', 'voice']);
  });

  it('takes recovery codes at login and reset only, never at settings or the secure area', async () => {
    await giveAlice('totp');
    await giveAlice('passkey');
    recoveryLeft = 3;
    expect(await methods('login')).toEqual(['passkey', 'totp', 'sms', 'voice', 'recovery']);
    expect(await methods('reset')).toEqual(['passkey', 'totp', 'sms', 'voice', 'recovery']);
    expect(await methods('settings')).toEqual(['passkey', 'totp', 'sms', 'voice']);
    expect(await methods('admin')).toEqual(['passkey', 'totp', 'sms', 'voice']);
    // A spent set is no way in.
    recoveryLeft = 0;
    expect(await methods('login')).not.toContain('recovery');
  });

  it('gives the secure area only ADMIN_STEP_UP_FACTORS, in its order, and nothing when the admin has none of them', async () => {
    const strict = stageFactors(['totp', 'passkey']);
    expect(await methods('admin', strict)).toEqual([]);
    expect(await strict.opening(alice, 'admin')).toBeNull();
    await giveAlice('passkey');
    await giveAlice('totp');
    expect(await methods('admin', strict)).toEqual(['totp', 'passkey']);
    expect(await strict.opening(alice, 'admin')).toEqual({ method: 'totp' });
    // The phone is refused there, by either channel.
    expect(await strict.accepts(alice, 'admin', { method: 'phone', channel: 'sms' })).toBe(false);
    // Only the channels listed: a call but no text.
    const callsOnly = stageFactors(['voice']);
    expect(await methods('admin', callsOnly)).toEqual(['voice']);
    expect(await callsOnly.accepts(alice, 'admin', { method: 'phone', channel: 'sms' })).toBe(false);
    // Elsewhere the account's other factors are accepted as usual.
    expect(await strict.accepts(alice, 'login', { method: 'phone', channel: 'sms' })).toBe(true);
  });

  it('opens the secure area on the strongest factor the admin has, and on the admin’s own channel among phone codes', async () => {
    expect(await stageFactors().opening(alice, 'admin', 'voice')).toEqual({
      method: 'phone',
      channel: 'voice',
    });
    await giveAlice('totp');
    expect(await stageFactors().opening(alice, 'admin', 'voice')).toEqual({ method: 'totp' });
    await giveAlice('passkey');
    expect(await stageFactors().opening(alice, 'admin')).toEqual({ method: 'passkey' });
  });

  it('opens other stages on the account’s default factor when it has it, else on the phone by the channel asked for', async () => {
    await giveAlice('totp');
    expect(await stageFactors().opening(alice, 'login', 'voice')).toEqual({
      method: 'phone',
      channel: 'voice',
    });
    const withDefault = { ...alice, defaultFactor: 'totp' as const };
    expect(await stageFactors().opening(withDefault, 'login')).toEqual({ method: 'totp' });
    expect(await stageFactors().opening(withDefault, 'settings')).toEqual({ method: 'totp' });
    // A default the account no longer has: the phone.
    const gone = { ...alice, defaultFactor: 'passkey' as const };
    expect(await stageFactors().opening(gone, 'login', 'sms')).toEqual({ method: 'phone', channel: 'sms' });
  });

  it('gives an admin’s settings only the secure area’s factors once the admin has one, when the secure area takes no phone code', async () => {
    // Threat: the admin's password and phone (a SIM swap) confirm the settings by text, add the
    // attacker's own passkey, and open a secure area that takes no phone code with it.
    const strict = stageFactors(['passkey', 'totp']);
    const admin = { ...alice, isAdmin: true };
    // No such factor yet: the phone, so that the admin can add the first one.
    expect(await methods('settings', strict)).toEqual(['sms', 'voice']);
    expect(
      (await strict.options(admin, 'settings')).map((way) =>
        way.method === 'phone' ? way.channel : way.method,
      ),
    ).toEqual(['sms', 'voice']);
    expect(await strict.passkeyNeedsUserVerification(admin, 'settings')).toBe(false);

    await giveAlice('totp');
    recoveryLeft = 5;
    expect(await strict.options(admin, 'settings')).toEqual([{ method: 'totp' }]);
    expect(await strict.accepts(admin, 'settings', { method: 'phone', channel: 'sms' })).toBe(false);
    expect(await strict.opening(admin, 'settings', 'sms')).toEqual({ method: 'totp' });
    expect(await openStage({}, strict, admin, 'settings', 'sms')).toEqual({ showFactor: true });
    await giveAlice('passkey');
    expect(await strict.options(admin, 'settings')).toEqual([{ method: 'passkey' }, { method: 'totp' }]);
    // As at the secure area, the passkey must check its user.
    expect(await strict.passkeyNeedsUserVerification(admin, 'settings')).toBe(true);

    // Not an admin, or a secure area that takes phone codes: the settings as for everyone.
    expect(await methods('settings', strict)).toEqual(['passkey', 'totp', 'sms', 'voice']);
    expect(await strict.passkeyNeedsUserVerification(alice, 'settings')).toBe(false);
    expect(
      (await stageFactors().options(admin, 'settings')).map((way) =>
        way.method === 'phone' ? way.channel : way.method,
      ),
    ).toEqual(['passkey', 'totp', 'sms', 'voice']);
  });

  it('offers the secure area no passkey made without user verification', async () => {
    await giveAlice('passkey', { userVerified: false });
    expect(await methods('admin', stageFactors(['passkey', 'totp']))).toEqual([]);
    expect(await methods('admin')).toEqual(['sms', 'voice']);
    // Elsewhere it is a passkey like any other.
    expect(await methods('login')).toEqual(['passkey', 'sms', 'voice']);
    await giveAlice('passkey');
    expect(await methods('admin', stageFactors(['passkey', 'totp']))).toEqual(['passkey']);
  });

  it('offers no authenticator app whose secret will not open (the factor key changed)', async () => {
    await giveAlice('totp');
    const unusable = stageFactors(undefined, undefined, {
      ...checkers,
      totp: { ...checkers.totp, isUsable: () => false },
    });
    expect(await methods('login', unusable)).toEqual(['sms', 'voice']);
    expect(await unusable.accepts(alice, 'login', { method: 'totp' })).toBe(false);
    expect(await unusable.opening({ ...alice, defaultFactor: 'totp' }, 'login', 'sms')).toEqual({
      method: 'phone',
      channel: 'sms',
    });
  });

  it('never offers a factor whose checker is not wired, even when the account has one', async () => {
    await giveAlice('totp');
    await giveAlice('passkey');
    recoveryLeft = 5;
    expect(await methods('login', stageFactors(undefined, undefined, {}))).toEqual(['sms', 'voice']);
  });

  it('opens a stage in the session: a factor that sends nothing is remembered for that stage only', async () => {
    await giveAlice('passkey');
    const session: { factorMethod?: { kind: string; method: 'totp' | 'passkey' | 'recovery' } } = {
      factorMethod: { kind: 'reset', method: 'recovery' },
    };
    const built = stageFactors();
    expect(await openStage(session, built, { ...alice, defaultFactor: 'passkey' }, 'login')).toEqual({
      showFactor: true,
    });
    expect(session.factorMethod).toEqual({ kind: 'login', method: 'passkey' });
    expect(await openStage(session, built, alice, 'settings', 'sms')).toEqual({ sendBy: 'sms' });
    expect(session.factorMethod).toBeUndefined();
    expect(await openStage(session, stageFactors(['totp']), alice, 'admin')).toEqual({
      nothingAccepted: true,
    });
  });
});
