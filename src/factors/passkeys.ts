import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransportFuture,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { User } from '../users/store.js';
import type { FactorStore, PasskeyFactor } from './store.js';

/**
 * @simplewebauthn/server and its certificate parsers take about a third of a second to load: the
 * site loads them at the first passkey ceremony, not at every start (issue 10, `npm start`).
 */
let webAuthnLibrary: Promise<typeof import('@simplewebauthn/server')> | undefined;
const webAuthn = () =>
  (webAuthnLibrary ??= import('@simplewebauthn/server').catch((error: unknown) => {
    // A failed load is tried again at the next ceremony, not kept until a restart.
    webAuthnLibrary = undefined;
    throw error;
  }));

/**
 * Passkeys (WebAuthn, issue 12) with @simplewebauthn/server: the options the browser needs, and the
 * checks of what it answers. The relying party is PUBLIC_URL (its host is the rpID, its origin the
 * only origin accepted), so a passkey made for one host never works on another.
 *
 * The challenge is the caller's to keep (in the session) and to delete before calling a finish
 * method: a challenge answered once is never accepted again, even when that answer failed.
 */
export interface Passkeys {
  /** Options to create a passkey for this account: rpID/rpName from PUBLIC_URL/site name, the account's existing passkeys excluded, residentKey 'preferred', userVerification 'preferred', attestation 'none'. The caller keeps options.challenge in the session. */
  registrationOptions(user: User): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /** Verifies the browser's answer against that challenge, the expected origin (PUBLIC_URL's origin) and rpID; stores the passkey (label; at most 10 per account). */
  finishRegistration(
    user: User,
    response: unknown,
    expectedChallenge: string,
    label: string,
  ): Promise<{ ok: true; factor: PasskeyFactor } | { ok: false; message: string }>;
  /** Options to sign in with one of this account's passkeys (allowCredentials = its passkeys). userVerification 'required' for the admin scope, else 'preferred'. */
  authenticationOptions(
    user: User,
    options: { userVerification: 'required' | 'preferred' },
  ): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /** Verifies an assertion: the credential must be one of THIS account's passkeys; user verification required when asked; the counter must move forward (store.recordPasskeyUse) — a clone is refused and audited by the caller. */
  finishAuthentication(
    user: User,
    response: unknown,
    expectedChallenge: string,
    options: { requireUserVerification: boolean },
  ): Promise<
    | { ok: true; factor: PasskeyFactor }
    | { ok: false; reason: 'invalid' | 'not_this_account' | 'counter'; message: string }
  >;
}

export const MAX_PASSKEYS_PER_ACCOUNT = 10;
/** How long the browser lets the person answer; the caller's challenge lives as long (PASSKEY_CHALLENGE_TTL_MS). */
export const PASSKEY_CHALLENGE_TTL_MS = 5 * 60_000;
export const PASSKEY_LABEL_MAX_LENGTH = 60;
/** A browser's answer is 1–3 KB; anything past this is not one, and is not parsed at all. */
export const MAX_CREDENTIAL_JSON_BYTES = 16 * 1024;

const KNOWN_TRANSPORTS: readonly AuthenticatorTransportFuture[] = [
  'ble',
  'cable',
  'hybrid',
  'internal',
  'nfc',
  'smart-card',
  'usb',
];

const base64url = z
  .string()
  .max(8192)
  .regex(/^[A-Za-z0-9_-]+$/);
const transports = z
  .array(z.string().max(20))
  .max(10)
  .optional()
  .transform((names) =>
    (names ?? []).filter((name): name is AuthenticatorTransportFuture =>
      (KNOWN_TRANSPORTS as readonly string[]).includes(name),
    ),
  );
const commonFields = {
  id: base64url,
  rawId: base64url,
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional().catch(undefined),
  clientExtensionResults: z.record(z.string(), z.unknown()).optional().default({}),
};

const registrationShape = z.object({
  ...commonFields,
  response: z.object({
    clientDataJSON: base64url,
    attestationObject: base64url,
    authenticatorData: base64url.optional(),
    publicKey: base64url.optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    transports,
  }),
});

const authenticationShape = z.object({
  ...commonFields,
  response: z.object({
    clientDataJSON: base64url,
    authenticatorData: base64url,
    signature: base64url,
    userHandle: base64url.optional(),
  }),
});

const NOT_A_PASSKEY_ANSWER =
  'Your browser did not send a passkey. Try again, in a browser that supports passkeys.';

/**
 * The browser's answer as the form posted it (a JSON string) or already parsed: anything too big,
 * not JSON or not of the expected shape is refused here, before the library sees it.
 */
function parseAnswer<T>(raw: unknown, shape: z.ZodType<T>): T | null {
  let value = raw;
  if (typeof raw === 'string') {
    if (raw.trim() === '' || Buffer.byteLength(raw) > MAX_CREDENTIAL_JSON_BYTES) return null;
    try {
      value = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  const parsed = shape.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/**
 * The WebAuthn user handle: the same for every passkey of an account (an authenticator then keeps
 * one passkey per account, not a pile of them), and not the account's id or name in clear (the
 * handle is stored on the authenticator and sent back with each use).
 */
function userHandleOf(rpId: string, userId: number): Uint8Array<ArrayBuffer> {
  const digest = createHash('sha256').update(`keyhole-passkey-user:${rpId}:${userId}`).digest();
  return new Uint8Array(digest.subarray(0, 16));
}

function passkeysOf(factors: Awaited<ReturnType<FactorStore['listForUser']>>): PasskeyFactor[] {
  return factors.filter((factor): factor is PasskeyFactor => factor.kind === 'passkey');
}

function descriptorOf(passkey: PasskeyFactor) {
  return {
    id: passkey.credentialId,
    transports: passkey.transports.filter((name): name is AuthenticatorTransportFuture =>
      (KNOWN_TRANSPORTS as readonly string[]).includes(name),
    ),
  };
}

/** A label as stored: trimmed, spaces collapsed, never empty, never longer than the form allows. */
export function normalisePasskeyLabel(label: string): string {
  const tidy = label.normalize('NFKC').replace(/\s+/g, ' ').trim().slice(0, PASSKEY_LABEL_MAX_LENGTH);
  return tidy || 'Passkey';
}

/** The library's reason for refusing a passkey, for the log: one line, no stack, bounded. */
const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 200);

export function createPasskeys(deps: {
  factors: FactorStore;
  clock: Clock;
  rpId: string;
  rpName: string;
  origin: string;
  logger: Logger;
}): Passkeys {
  const { factors, clock, rpId, rpName, origin, logger } = deps;
  if (isIP(rpId) !== 0) {
    logger.warn(
      { rpId },
      'PUBLIC_URL names an IP address: browsers refuse passkeys there; use a host name (localhost on a laptop)',
    );
  }

  return {
    async registrationOptions(user) {
      const existing = passkeysOf(await factors.listForUser(user.id));
      const { generateRegistrationOptions } = await webAuthn();
      return generateRegistrationOptions({
        rpName,
        rpID: rpId,
        userName: user.username,
        userDisplayName: user.username,
        userID: userHandleOf(rpId, user.id),
        timeout: PASSKEY_CHALLENGE_TTL_MS,
        attestationType: 'none',
        // The same authenticator twice would be one passkey under two names: the browser says so.
        excludeCredentials: existing.map(descriptorOf),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
    },

    async finishRegistration(user, raw, expectedChallenge, label) {
      const response = parseAnswer(raw, registrationShape);
      if (!response) return { ok: false, message: NOT_A_PASSKEY_ANSWER };
      const { verifyRegistrationResponse } = await webAuthn();
      let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
      try {
        verified = await verifyRegistrationResponse({
          response: response as RegistrationResponseJSON,
          expectedChallenge,
          expectedOrigin: origin,
          expectedRPID: rpId,
          // 'preferred' at creation: a security key without a PIN may still be a second factor;
          // whether it verified its user is stored, and the admin step asks for it at each use.
          requireUserVerification: false,
        });
      } catch (error) {
        // The library says why in its message (wrong origin, challenge, signature...): for the
        // operator, never for the page.
        logger.info({ reason: reasonOf(error), userId: user.id }, 'a passkey registration was refused');
        return { ok: false, message: 'The passkey could not be checked. Try again.' };
      }
      if (!verified.verified) return { ok: false, message: 'The passkey could not be checked. Try again.' };
      const { credential, userVerified } = verified.registrationInfo;
      const credentialId = credential.id;
      const already = await factors.findByCredentialId(credentialId);
      if (already) {
        return {
          ok: false,
          message:
            already.userId === user.id
              ? 'This passkey is already on your account.'
              : 'This passkey cannot be added. Make a new one on your device.',
        };
      }
      const added = await factors.add(
        {
          kind: 'passkey',
          userId: user.id,
          label: normalisePasskeyLabel(label),
          credentialId,
          publicKey: Buffer.from(credential.publicKey).toString('base64url'),
          signCount: credential.counter,
          transports: credential.transports ?? response.response.transports,
          userVerified,
        },
        { maxPerKind: MAX_PASSKEYS_PER_ACCOUNT },
      );
      if (!added || added.kind !== 'passkey') {
        // The cap, or the same credential added by a racing request a moment ago.
        return {
          ok: false,
          message: `An account can have at most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys, and this one may be there already. Remove one you no longer use, then try again.`,
        };
      }
      return { ok: true, factor: added };
    },

    async authenticationOptions(user, { userVerification }) {
      const passkeys = passkeysOf(await factors.listForUser(user.id));
      const { generateAuthenticationOptions } = await webAuthn();
      return generateAuthenticationOptions({
        rpID: rpId,
        allowCredentials: passkeys.map(descriptorOf),
        userVerification,
        timeout: PASSKEY_CHALLENGE_TTL_MS,
      });
    },

    async finishAuthentication(user, raw, expectedChallenge, { requireUserVerification }) {
      const response = parseAnswer(raw, authenticationShape);
      if (!response) return { ok: false, reason: 'invalid', message: NOT_A_PASSKEY_ANSWER };
      const passkey = await factors.findByCredentialId(response.id);
      // Another account's passkey (or one removed since) proves nothing about this account, even
      // with a valid signature: the account is chosen by the password step, not by the passkey.
      if (!passkey || passkey.userId !== user.id) {
        return {
          ok: false,
          reason: 'not_this_account',
          message: 'That passkey is not one of this account’s. Use a passkey you added to this account.',
        };
      }
      const { verifyAuthenticationResponse } = await webAuthn();
      let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
      try {
        verified = await verifyAuthenticationResponse({
          response: response as AuthenticationResponseJSON,
          expectedChallenge,
          expectedOrigin: origin,
          expectedRPID: rpId,
          credential: {
            id: passkey.credentialId,
            publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
            // 0 turns the library's own counter check off: the counter is checked below by the
            // store's one conditional update, which also holds when two requests race.
            counter: 0,
            transports: descriptorOf(passkey).transports,
          },
          // Checked below from the signed flags, so that a missing check gets its own words.
          requireUserVerification: false,
        });
      } catch (error) {
        logger.info({ reason: reasonOf(error), userId: user.id }, 'a passkey assertion was refused');
        return { ok: false, reason: 'invalid', message: 'The passkey could not be checked. Try again.' };
      }
      if (!verified.verified) {
        return { ok: false, reason: 'invalid', message: 'The passkey could not be checked. Try again.' };
      }
      const { newCounter, userVerified } = verified.authenticationInfo;
      if (requireUserVerification && !userVerified) {
        return {
          ok: false,
          reason: 'invalid',
          message:
            'This step needs your passkey to check it is you (a PIN, fingerprint or face). Use a passkey that can, or choose another way.',
        };
      }
      const counterMovedOn = await recordUse(passkey, newCounter);
      if (!counterMovedOn) {
        return {
          ok: false,
          reason: 'counter',
          message:
            'This passkey’s use count went backwards, which a copied passkey does. It was refused; choose another way.',
        };
      }
      return {
        ok: true,
        factor: { ...passkey, signCount: newCounter, lastUsedAt: clock.now() },
      };
    },
  };

  /**
   * The counter must move forward (or stay 0, as many passkeys always report). A stored count that
   * changed since it was read (another use of the same passkey, at the same moment) is read again:
   * the answer is refused only when its counter is not past the one now stored.
   */
  async function recordUse(passkey: PasskeyFactor, newCounter: number): Promise<boolean> {
    let previous = passkey.signCount;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (await factors.recordPasskeyUse(passkey.id, previous, newCounter, clock.now())) return true;
      const current = await factors.findById(passkey.userId, passkey.id);
      if (!current || current.kind !== 'passkey' || current.signCount === previous) return false;
      previous = current.signCount;
    }
    return false;
  }
}
