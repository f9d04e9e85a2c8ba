import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

/**
 * A passkey authenticator in Node, for tests without a browser: it answers the site's WebAuthn
 * options as a browser and a platform authenticator would ('none' attestation, ES256 keys on
 * P-256, a signature counter), so HTTP tests can register passkeys and sign in with them.
 *
 * It speaks for the origin and rpID it is made with: make one with another origin or rpID to
 * play a phishing site, change `challenge` in the options to replay an old answer, or pass
 * `userVerified: false` / a negative `counterStep` to play a weaker or a cloned authenticator.
 */
export interface SoftwareAuthenticator {
  /** navigator.credentials.create(): a new passkey, as @simplewebauthn/browser's startRegistration returns it. */
  register(
    optionsJSON: PublicKeyCredentialCreationOptionsJSON,
    options?: { userVerified?: boolean },
  ): RegistrationResponseJSON;
  /**
   * navigator.credentials.get(): an assertion by the first passkey it holds that the options allow
   * (or `credentialId`). The counter moves by `counterStep` (default 1; 0 keeps it, a negative
   * step plays a clone that is behind). `userVerified` defaults to true.
   */
  authenticate(
    optionsJSON: PublicKeyCredentialRequestOptionsJSON,
    options?: { userVerified?: boolean; counterStep?: number; credentialId?: string },
  ): AuthenticationResponseJSON;
  /** The ids (base64url) of the passkeys it holds, oldest first. */
  readonly credentialIds: string[];
}

interface HeldCredential {
  id: Buffer;
  privateKey: KeyObject;
  userHandle: string;
  counter: number;
}

const FLAG_USER_PRESENT = 0x01;
const FLAG_USER_VERIFIED = 0x04;
const FLAG_ATTESTED_CREDENTIAL = 0x40;
/** Ours is no known model: the all-zero AAGUID, as 'none' attestation allows. */
const AAGUID = Buffer.alloc(16);

export function createSoftwareAuthenticator(site: { origin: string; rpId: string }): SoftwareAuthenticator {
  const held: HeldCredential[] = [];
  const rpIdHash = createHash('sha256').update(site.rpId).digest();

  function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: site.origin, crossOrigin: false }));
  }

  function flagsOf(userVerified: boolean, extra = 0): number {
    return FLAG_USER_PRESENT | (userVerified ? FLAG_USER_VERIFIED : 0) | extra;
  }

  function counterBytes(counter: number): Buffer {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(counter);
    return bytes;
  }

  return {
    get credentialIds() {
      return held.map((credential) => credential.id.toString('base64url'));
    },

    register(optionsJSON, { userVerified = true } = {}) {
      const excluded = new Set((optionsJSON.excludeCredentials ?? []).map((descriptor) => descriptor.id));
      if (held.some((credential) => excluded.has(credential.id.toString('base64url')))) {
        throw new Error('InvalidStateError: this authenticator already holds a passkey for the account');
      }
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = publicKey.export({ format: 'jwk' });
      const credential: HeldCredential = {
        id: randomBytes(32),
        privateKey,
        userHandle: optionsJSON.user.id,
        counter: 0,
      };
      held.push(credential);
      // COSE_Key (RFC 9053): kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
      const coseKey = encodeCbor(
        new Map<number, unknown>([
          [1, 2],
          [3, -7],
          [-1, 1],
          [-2, Buffer.from(jwk.x!, 'base64url')],
          [-3, Buffer.from(jwk.y!, 'base64url')],
        ]),
      );
      const idLength = Buffer.alloc(2);
      idLength.writeUInt16BE(credential.id.length);
      const authData = Buffer.concat([
        rpIdHash,
        Buffer.from([flagsOf(userVerified, FLAG_ATTESTED_CREDENTIAL)]),
        counterBytes(credential.counter),
        AAGUID,
        idLength,
        credential.id,
        coseKey,
      ]);
      const attestationObject = encodeCbor(
        new Map<string, unknown>([
          ['fmt', 'none'],
          ['attStmt', new Map()],
          ['authData', authData],
        ]),
      );
      const id = credential.id.toString('base64url');
      return {
        id,
        rawId: id,
        type: 'public-key',
        response: {
          clientDataJSON: clientData('webauthn.create', optionsJSON.challenge).toString('base64url'),
          attestationObject: attestationObject.toString('base64url'),
          transports: ['internal'],
        },
        authenticatorAttachment: 'platform',
        clientExtensionResults: {},
      };
    },

    authenticate(optionsJSON, { userVerified = true, counterStep = 1, credentialId } = {}) {
      const allowed = (optionsJSON.allowCredentials ?? []).map((descriptor) => descriptor.id);
      const credential = held.find((candidate) => {
        const id = candidate.id.toString('base64url');
        if (credentialId !== undefined) return id === credentialId;
        return allowed.length === 0 || allowed.includes(id);
      });
      if (!credential)
        throw new Error('NotAllowedError: this authenticator holds none of the passkeys asked for');
      credential.counter = Math.max(0, credential.counter + counterStep);
      const authData = Buffer.concat([
        rpIdHash,
        Buffer.from([flagsOf(userVerified)]),
        counterBytes(credential.counter),
      ]);
      const clientDataJSON = clientData('webauthn.get', optionsJSON.challenge);
      const signed = Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]);
      // ES256 in WebAuthn is an ASN.1 DER ECDSA signature, node's default for EC keys.
      const signature = sign('sha256', signed, credential.privateKey);
      const id = credential.id.toString('base64url');
      return {
        id,
        rawId: id,
        type: 'public-key',
        response: {
          clientDataJSON: clientDataJSON.toString('base64url'),
          authenticatorData: authData.toString('base64url'),
          signature: signature.toString('base64url'),
          userHandle: credential.userHandle,
        },
        authenticatorAttachment: 'platform',
        clientExtensionResults: {},
      };
    },
  };
}

/**
 * The options a passkey form hands to the browser (`<script type="application/json"
 * data-passkey-options>`, public/js/passkeys.js), read from a page as that script reads them.
 */
export function passkeyOptionsIn<
  T extends PublicKeyCredentialCreationOptionsJSON | PublicKeyCredentialRequestOptionsJSON,
>(html: string): T {
  const match = html.match(/<script type="application\/json" data-passkey-options>([^<]*)<\/script>/);
  if (!match) throw new Error('no passkey options on the page');
  return JSON.parse(match[1]!) as T;
}

/**
 * The little CBOR (RFC 8949) an authenticator writes: unsigned and negative integers, byte and
 * text strings, arrays and maps, definite lengths only.
 */
export function encodeCbor(value: unknown): Buffer {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error('only integers are encoded');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (Array.isArray(value)) {
    return Buffer.concat([head(4, value.length), ...value.map(encodeCbor)]);
  }
  if (value instanceof Map) {
    const parts: Buffer[] = [head(5, value.size)];
    for (const [key, item] of value) parts.push(encodeCbor(key), encodeCbor(item));
    return Buffer.concat(parts);
  }
  throw new Error(`cannot encode ${typeof value} as CBOR`);
}

function head(majorType: number, length: number): Buffer {
  const major = majorType << 5;
  if (length < 24) return Buffer.from([major | length]);
  if (length < 0x100) return Buffer.from([major | 24, length]);
  if (length < 0x10000) {
    const bytes = Buffer.alloc(3);
    bytes[0] = major | 25;
    bytes.writeUInt16BE(length, 1);
    return bytes;
  }
  const bytes = Buffer.alloc(5);
  bytes[0] = major | 26;
  bytes.writeUInt32BE(length, 1);
  return bytes;
}
