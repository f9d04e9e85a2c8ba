import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPasskeys, MAX_PASSKEYS_PER_ACCOUNT, type Passkeys } from '../../src/factors/passkeys.js';
import { createLogger } from '../../src/logger.js';
import type { User } from '../../src/users/store.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { fictionalPhone } from '../helpers/flows.js';
import {
  createSoftwareAuthenticator,
  type SoftwareAuthenticator,
} from '../helpers/software-authenticator.js';

const SITE = { origin: 'https://keyhole.example', rpId: 'keyhole.example' };

/**
 * The passkey rules (issue 12), with a software authenticator in place of a browser and the real
 * factor store on SQLite. Threats: a phishing site relaying the answer (origin and rpID), a replayed
 * answer (challenge), someone else's passkey offered for this account, a passkey that skipped its
 * PIN at the admin step, a cloned authenticator (its counter behind), and junk in the form field.
 */
describe('passkeys', () => {
  let site: TestApp;
  let passkeys: Passkeys;
  let rosa: User;
  let authenticator: SoftwareAuthenticator;

  const newUser = async (username: string) =>
    (await site.users.create({
      username,
      passwordHash: 'x',
      phone: fictionalPhone(),
      preferredChannel: 'sms',
    }))!;

  /** A passkey made and stored through the module, as the enrolment page does. */
  async function addPasskey(user: User, device: SoftwareAuthenticator, label = 'Laptop') {
    const options = await passkeys.registrationOptions(user);
    const answer = JSON.stringify(device.register(options));
    const outcome = await passkeys.finishRegistration(user, answer, options.challenge, label);
    if (!outcome.ok) throw new Error(outcome.message);
    return outcome.factor;
  }

  async function signIn(
    user: User,
    device: SoftwareAuthenticator,
    use: { userVerified?: boolean; counterStep?: number } = {},
    userVerification: 'required' | 'preferred' = 'preferred',
  ) {
    const options = await passkeys.authenticationOptions(user, { userVerification });
    const answer = JSON.stringify(device.authenticate(options, use));
    return passkeys.finishAuthentication(user, answer, options.challenge, {
      requireUserVerification: userVerification === 'required',
    });
  }

  beforeEach(async () => {
    site = await createTestApp();
    passkeys = createPasskeys({
      factors: site.stores.factors,
      clock: site.clock,
      rpName: 'Keyhole',
      logger: createLogger('silent'),
      ...SITE,
    });
    rosa = await newUser('rosa');
    authenticator = createSoftwareAuthenticator(SITE);
  });
  afterEach(() => site.close());

  describe('registration', () => {
    it('offers options for this site and account, without the passkeys it already has', async () => {
      const first = await passkeys.registrationOptions(rosa);
      expect(first.rp).toEqual({ id: 'keyhole.example', name: 'Keyhole' });
      expect(first.user.name).toBe('rosa');
      // The user handle is not the account's id or name in clear, and is the same each time.
      expect(Buffer.from(first.user.id, 'base64url').toString()).not.toMatch(/rosa|^\d+$/);
      expect(first.attestation).toBe('none');
      expect(first.authenticatorSelection).toMatchObject({
        residentKey: 'preferred',
        userVerification: 'preferred',
      });
      expect(first.excludeCredentials).toEqual([]);

      const added = await addPasskey(rosa, authenticator);
      const second = await passkeys.registrationOptions(rosa);
      expect(second.user.id).toBe(first.user.id);
      expect(second.challenge).not.toBe(first.challenge);
      expect(second.excludeCredentials?.map((descriptor) => descriptor.id)).toEqual([added.credentialId]);
    });

    it('stores a valid passkey with its label, key, counter and transports', async () => {
      const factor = await addPasskey(rosa, authenticator, '  Work   laptop ');
      expect(factor).toMatchObject({
        kind: 'passkey',
        userId: rosa.id,
        label: 'Work laptop',
        credentialId: authenticator.credentialIds[0],
        signCount: 0,
        transports: ['internal'],
        userVerified: true,
        lastUsedAt: null,
      });
      expect(await site.stores.factors.listForUser(rosa.id)).toEqual([factor]);
    });

    it('refuses an answer made for another origin, another rpID or another challenge', async () => {
      const options = await passkeys.registrationOptions(rosa);
      const phishing = createSoftwareAuthenticator({
        origin: 'https://keyhole.example.evil',
        rpId: SITE.rpId,
      });
      const otherRp = createSoftwareAuthenticator({ origin: SITE.origin, rpId: 'evil.example' });
      const stale = { ...options, challenge: (await passkeys.registrationOptions(rosa)).challenge };
      for (const answer of [
        phishing.register(options),
        otherRp.register(options),
        authenticator.register(stale),
      ]) {
        const outcome = await passkeys.finishRegistration(
          rosa,
          JSON.stringify(answer),
          options.challenge,
          'Laptop',
        );
        expect(outcome).toEqual({ ok: false, message: 'The passkey could not be checked. Try again.' });
      }
      expect(await site.stores.factors.listForUser(rosa.id)).toEqual([]);
    });

    it('refuses the same passkey twice, on this account or another', async () => {
      const options = await passkeys.registrationOptions(rosa);
      const answer = authenticator.register(options);
      expect((await passkeys.finishRegistration(rosa, answer, options.challenge, 'A')).ok).toBe(true);
      const again = await passkeys.finishRegistration(rosa, answer, options.challenge, 'B');
      expect(again).toEqual({ ok: false, message: 'This passkey is already on your account.' });
      const bruno = await newUser('bruno');
      const theirs = await passkeys.finishRegistration(bruno, answer, options.challenge, 'C');
      expect(theirs.ok).toBe(false);
      expect(await site.stores.factors.listForUser(bruno.id)).toEqual([]);
    });

    it(`keeps at most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys per account`, async () => {
      for (let i = 0; i < MAX_PASSKEYS_PER_ACCOUNT; i += 1) {
        await addPasskey(rosa, createSoftwareAuthenticator(SITE), `Key ${i + 1}`);
      }
      const options = await passkeys.registrationOptions(rosa);
      const outcome = await passkeys.finishRegistration(
        rosa,
        JSON.stringify(authenticator.register(options)),
        options.challenge,
        'One too many',
      );
      expect(outcome.ok).toBe(false);
      expect(outcome.ok ? '' : outcome.message).toMatch(/at most 10 passkeys/);
      expect(await site.stores.factors.listForUser(rosa.id)).toHaveLength(MAX_PASSKEYS_PER_ACCOUNT);
    });

    it('answers junk with a message, never an exception', async () => {
      const options = await passkeys.registrationOptions(rosa);
      const valid = authenticator.register(options);
      const junk: unknown[] = [
        '',
        'not json',
        '{"id":',
        'null',
        '[]',
        JSON.stringify({ ...valid, type: 'password' }),
        JSON.stringify({ ...valid, id: 'not base64url!' }),
        JSON.stringify({ ...valid, response: { ...valid.response, attestationObject: 'AAAA' } }),
        JSON.stringify({ ...valid, response: { clientDataJSON: 'e30' } }),
        JSON.stringify({ ...valid, padding: 'x'.repeat(17 * 1024) }),
        42,
        undefined,
        { __proto__: { id: 'x' } },
      ];
      for (const answer of junk) {
        const outcome = await passkeys.finishRegistration(rosa, answer, options.challenge, 'Laptop');
        expect(outcome.ok, String(answer).slice(0, 80)).toBe(false);
        expect(outcome.ok ? '' : outcome.message).toMatch(/Try again/);
      }
      expect(await site.stores.factors.listForUser(rosa.id)).toEqual([]);
    });
  });

  describe('authentication', () => {
    it('offers only this account’s passkeys, with the user verification asked for', async () => {
      const added = await addPasskey(rosa, authenticator);
      await addPasskey(await newUser('bruno'), createSoftwareAuthenticator(SITE));
      const options = await passkeys.authenticationOptions(rosa, { userVerification: 'required' });
      expect(options.rpId).toBe('keyhole.example');
      expect(options.userVerification).toBe('required');
      expect(options.allowCredentials).toEqual([
        { id: added.credentialId, type: 'public-key', transports: ['internal'] },
      ]);
      expect(
        (await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' })).userVerification,
      ).toBe('preferred');
    });

    it('accepts this account’s passkey and records its use', async () => {
      const added = await addPasskey(rosa, authenticator);
      site.clock.advanceMinutes(3);
      const outcome = await signIn(rosa, authenticator);
      expect(outcome).toMatchObject({ ok: true, factor: { id: added.id, signCount: 1 } });
      const stored = await site.stores.factors.findById(rosa.id, added.id);
      expect(stored).toMatchObject({ signCount: 1, lastUsedAt: site.clock.now() });
    });

    it('refuses another account’s passkey, however valid its signature', async () => {
      await addPasskey(rosa, authenticator);
      const bruno = await newUser('bruno');
      const brunosKey = createSoftwareAuthenticator(SITE);
      await addPasskey(bruno, brunosKey);
      // Bruno's passkey answers a challenge made for Rosa (the options name none of his passkeys).
      const options = await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' });
      const answer = brunosKey.authenticate({ ...options, allowCredentials: [] });
      const outcome = await passkeys.finishAuthentication(rosa, JSON.stringify(answer), options.challenge, {
        requireUserVerification: false,
      });
      expect(outcome).toMatchObject({ ok: false, reason: 'not_this_account' });
    });

    it('refuses a passkey that did not verify its user where that is required, and accepts it elsewhere', async () => {
      await addPasskey(rosa, authenticator);
      const refused = await signIn(rosa, authenticator, { userVerified: false }, 'required');
      expect(refused).toMatchObject({ ok: false, reason: 'invalid', message: expect.stringMatching(/PIN/) });
      expect((await signIn(rosa, authenticator, { userVerified: false }, 'preferred')).ok).toBe(true);
      expect((await signIn(rosa, authenticator, { userVerified: true }, 'required')).ok).toBe(true);
    });

    it('refuses a counter that went backwards (a cloned authenticator), and one that stood still', async () => {
      const added = await addPasskey(rosa, authenticator);
      expect((await signIn(rosa, authenticator, { counterStep: 5 })).ok).toBe(true);
      const clone = await signIn(rosa, authenticator, { counterStep: -2 });
      expect(clone).toMatchObject({ ok: false, reason: 'counter' });
      const still = await signIn(rosa, authenticator, { counterStep: 0 });
      expect(still).toMatchObject({ ok: false, reason: 'counter' });
      expect(await site.stores.factors.findById(rosa.id, added.id)).toMatchObject({ signCount: 5 });
      // An authenticator ahead of the stored count (3 + 5 > 5) is accepted again.
      expect((await signIn(rosa, authenticator, { counterStep: 5 })).ok).toBe(true);
    });

    it('lets one of two copies of an answer sent at once through (the counter is one conditional update)', async () => {
      const added = await addPasskey(rosa, authenticator);
      const options = await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' });
      const answer = JSON.stringify(authenticator.authenticate(options));
      const outcomes = await Promise.all(
        [1, 2, 3].map(() =>
          passkeys.finishAuthentication(rosa, answer, options.challenge, { requireUserVerification: false }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
      expect(outcomes.filter((outcome) => !outcome.ok && outcome.reason === 'counter')).toHaveLength(2);
      expect(await site.stores.factors.findById(rosa.id, added.id)).toMatchObject({ signCount: 1 });
    });

    it('accepts a passkey whose counter is always 0, as many are', async () => {
      await addPasskey(rosa, authenticator);
      expect((await signIn(rosa, authenticator, { counterStep: 0 })).ok).toBe(true);
      expect((await signIn(rosa, authenticator, { counterStep: 0 })).ok).toBe(true);
    });

    it('refuses an answer to another challenge, or made for another origin', async () => {
      await addPasskey(rosa, authenticator);
      const options = await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' });
      const replayed = authenticator.authenticate(options);
      const next = await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' });
      expect(
        await passkeys.finishAuthentication(rosa, JSON.stringify(replayed), next.challenge, {
          requireUserVerification: false,
        }),
      ).toMatchObject({ ok: false, reason: 'invalid' });

      const answer = authenticator.authenticate(next);
      const clientData = JSON.parse(Buffer.from(answer.response.clientDataJSON, 'base64url').toString());
      const relayed = {
        ...answer,
        response: {
          ...answer.response,
          clientDataJSON: Buffer.from(
            JSON.stringify({ ...clientData, origin: 'https://evil.example' }),
          ).toString('base64url'),
        },
      };
      expect(
        await passkeys.finishAuthentication(rosa, JSON.stringify(relayed), next.challenge, {
          requireUserVerification: false,
        }),
      ).toMatchObject({ ok: false, reason: 'invalid' });
    });

    it('refuses a signature that does not match', async () => {
      await addPasskey(rosa, authenticator);
      const options = await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' });
      const answer = authenticator.authenticate(options);
      const signature = Buffer.from(answer.response.signature, 'base64url');
      signature[signature.length - 1]! ^= 1;
      const forged = {
        ...answer,
        response: { ...answer.response, signature: signature.toString('base64url') },
      };
      expect(
        await passkeys.finishAuthentication(rosa, JSON.stringify(forged), options.challenge, {
          requireUserVerification: false,
        }),
      ).toMatchObject({ ok: false, reason: 'invalid' });
    });

    it('answers junk with a message, never an exception', async () => {
      await addPasskey(rosa, authenticator);
      const options = await passkeys.authenticationOptions(rosa, { userVerification: 'preferred' });
      const valid = authenticator.authenticate(options);
      for (const answer of [
        '',
        '{',
        'true',
        JSON.stringify({ ...valid, response: { ...valid.response, authenticatorData: 'AA' } }),
        JSON.stringify({ ...valid, response: { ...valid.response, signature: '' } }),
        JSON.stringify({ ...valid, rawId: 'something-else' }),
        'x'.repeat(20_000),
        null,
      ]) {
        const outcome = await passkeys.finishAuthentication(rosa, answer, options.challenge, {
          requireUserVerification: false,
        });
        expect(outcome, String(answer).slice(0, 80)).toMatchObject({ ok: false, reason: 'invalid' });
      }
    });
  });
});
