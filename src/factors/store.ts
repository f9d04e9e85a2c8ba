/**
 * An account's authenticator apps and passkeys (the phone is the account's own number, not a row
 * here). Every rule about them (how many, which scope accepts which) lives in src/factors/; the
 * store keeps rows and makes the writes that must be atomic atomic.
 */

export type StoredFactorKind = 'totp' | 'passkey';

interface FactorBase {
  id: number;
  userId: number;
  label: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface TotpFactor extends FactorBase {
  kind: 'totp';
  /** The secret, sealed (src/factors/secrets.ts): opened only to check a code. */
  sealedSecret: string;
  /** The last time step a code was accepted for (null: never used). */
  lastStep: number | null;
}

export interface PasskeyFactor extends FactorBase {
  kind: 'passkey';
  /** base64url */
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  signCount: number;
  transports: string[];
  /** Whether the authenticator verified its user (PIN, biometrics) when the passkey was made. */
  userVerified: boolean;
}

export type Factor = TotpFactor | PasskeyFactor;

export type NewFactor =
  | { kind: 'totp'; userId: number; label: string; sealedSecret: string; lastStep: number | null }
  | {
      kind: 'passkey';
      userId: number;
      label: string;
      credentialId: string;
      publicKey: string;
      signCount: number;
      transports: string[];
      userVerified: boolean;
    };

export interface FactorStore {
  /** The account's factors, oldest first. */
  listForUser(userId: number): Promise<Factor[]>;
  findById(userId: number, factorId: number): Promise<Factor | null>;
  /** A passkey by its credential id, whichever account it belongs to (null: none). */
  findByCredentialId(credentialId: string): Promise<PasskeyFactor | null>;
  /** Adds a factor; null when `maxPerKind` of that kind are already there, or the credential id is taken. */
  add(factor: NewFactor, options: { maxPerKind: number }): Promise<Factor | null>;
  /** Renames a factor of this account; false when it is not there. */
  rename(userId: number, factorId: number, label: string): Promise<boolean>;
  /**
   * Removes a factor of this account; false when it is not there, or when `keepOneOf` is given and
   * no other factor of those kinds would be left. The check and the delete are one transaction
   * under the account's lock: two removals racing cannot each leave the other as the last one.
   */
  remove(
    userId: number,
    factorId: number,
    options?: { keepOneOf?: readonly Factor['kind'][] },
  ): Promise<boolean>;
  /**
   * Accepts a TOTP code of `step` for this factor: one conditional update that succeeds only when
   * no code of this step or a later one was accepted before (two parallel requests with the same
   * code, on one instance or two: exactly one gets true).
   */
  acceptTotpStep(factorId: number, step: number, usedAt: Date): Promise<boolean>;
  /**
   * Records a passkey's use: the new signature counter, when it moved forward (or both are 0, as
   * many passkeys always report); false when it did not, a sign of a cloned authenticator.
   */
  recordPasskeyUse(factorId: number, previousCount: number, newCount: number, usedAt: Date): Promise<boolean>;
  /** Removes every factor of the account (an admin's reset of its second factors); how many. */
  removeAllForUser(userId: number): Promise<number>;
}
