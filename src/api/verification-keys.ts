import { describeChannel } from '../mfa/provider.js';
import { maskPhone } from '../users/phone.js';
import type { ApiKey } from './keys.js';
import type { ApiVerification } from './verification-store.js';

/**
 * What the verification API's rules (verifications.ts, verification-check.ts) share: who the
 * caller is, how the audit log names a key and a verification, and the keys of their limits.
 */

/** Where the caller is, for the toll-fraud guard's breaker and the audit log. */
export interface ApiCaller {
  key: ApiKey;
  /** The request's address, as the site's limits count it (src/http/client-address.ts). */
  clientKey: string;
  ip?: string;
}

/** Who the audit log names: `api:<key name>`, as the fraud guard's lines do. */
export const apiUsername = (key: ApiKey) => `api:${key.name}`;

/** The audit detail of a verification: label, masked number, channel. Never the code. */
export const describeVerification = (verification: Pick<ApiVerification, 'label' | 'phone' | 'channel'>) =>
  `${verification.label}: ${maskPhone(verification.phone)} by ${describeChannel(verification.channel)}`;

/** The key's codes in the last hour, whatever the number. */
export const keySendsKey = (keyId: number) => `api:key-sends:${keyId}`;
/** The key's codes to one number in the send window (the site's maxSendsPerWindow). */
export const numberSendsKey = (keyId: number, phone: string) => `api:sends:${keyId}:${phone}`;
/** The resend cooldown of a key, label and number. Labels are [a-z0-9_.-]: they cannot run into the number. */
export const cooldownKey = (keyId: number, label: string, phone: string) =>
  `api:cooldown:${keyId}:${label}:${phone}`;
/** Wrong codes for the key's verifications to a number, across them all: new ones do not reset it. */
export const failuresKey = (keyId: number, phone: string) => `api:failures:${keyId}:${phone}`;
