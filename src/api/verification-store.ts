import type { Clock } from '../clock.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { Channel } from '../mfa/provider.js';

/**
 * The verification API's codes, by id, each of one key. Every rule that must hold across requests
 * (attempts, one check at a time, approved once, a newer code voiding the older) is one
 * conditional write here, so racing requests, on one instance or several, cannot each act on a
 * stale copy. The site's own challenges live elsewhere (src/mfa/challenge-store.ts): neither ever
 * reads the other's. Backend: src/stores/sql/api-verification-store.ts (SQLite, PostgreSQL).
 */

export const API_VERIFICATION_STATUSES = [
  'pending',
  'approved',
  'expired',
  'max_attempts',
  'canceled',
] as const;
export type ApiVerificationStatus = (typeof API_VERIFICATION_STATUSES)[number];
/** The statuses a verification ends in: it no longer takes a code. */
export type ClosedStatus = Exclude<ApiVerificationStatus, 'pending'>;

/** One code sent for a key, under a label, to one number, by one provider. Never holds the code. */
export interface ApiVerification {
  /** `ver_` and 128 random bits: what the caller names it by. */
  id: string;
  keyId: number;
  label: string;
  phone: string;
  channel: Channel;
  provider: string;
  /** The provider's reference for this code (a verification sid, an issued code's id...). */
  handle?: string;
  createdAt: number;
  expiresAt: number;
  /** Attempts used, counting one taken by a check still in flight. */
  attempts: number;
  /**
   * As stored: a pending verification past its expiry stays 'pending' here until a check closes
   * it (the rules read the expiry too: src/api/verifications.ts).
   */
  status: ApiVerificationStatus;
  closedAt: number | null;
  /** Until when a check in flight holds it (reserveAttempt), or null. */
  checkHeldUntil: number | null;
}

export type NewApiVerification = Omit<ApiVerification, 'attempts' | 'status' | 'closedAt' | 'checkHeldUntil'>;

export interface ApiVerificationStore {
  create(verification: NewApiVerification): Promise<ApiVerification>;
  /** The verification with this id if it belongs to this key; another key's is as unknown as no id. */
  find(keyId: number, id: string): Promise<ApiVerification | null>;
  /** The key's newest pending verification to this number under this label, expired or not. */
  findNewestPending(keyId: number, label: string, phone: string): Promise<ApiVerification | null>;
  /**
   * Closes every pending verification of the key to this number under this label but `keepId`,
   * as canceled; returns those it closed.
   */
  cancelOthers(keyId: number, label: string, phone: string, keepId: string): Promise<ApiVerification[]>;
  /**
   * Takes one attempt, and with it the verification's one check in flight until `checkUntil`,
   * if it is pending, has fewer than `max` attempts used and no other check holds it (or the
   * other's hold ran out). Returns the attempts now used, or null when it could not take one.
   */
  reserveAttempt(id: string, max: number, checkUntil: number): Promise<number | null>;
  /**
   * Gives back an attempt whose code was never compared (the provider did not answer), and the
   * hold. `checkUntil` names the hold as reserveAttempt took it: a check whose hold ran out and
   * went to another never gives back the other's.
   */
  releaseAttempt(id: string, checkUntil: number): Promise<void>;
  /** Ends a check that used its attempt (a wrong code), leaving the verification pending. */
  endCheck(id: string, checkUntil: number): Promise<void>;
  /** Closes a pending verification with `status`. True only for the one call that closed it. */
  close(id: string, status: ClosedStatus): Promise<boolean>;
  /** Deletes up to `batchSize` verifications that expired before `before`; returns how many went. */
  deleteExpired(before: Date, batchSize: number): Promise<number>;
}

/** Expired verifications are kept a day (a late check still hears "expired"), then deleted. */
const EXPIRED_VERIFICATIONS_KEPT_MS = 24 * 60 * 60_000;
const VERIFICATION_DELETE_BATCH_SIZE = 500;

export function createExpiredApiVerificationsTask(deps: {
  verifications: ApiVerificationStore;
  clock: Clock;
}): HousekeepingTask {
  return {
    name: 'expired API verifications',
    batchSize: VERIFICATION_DELETE_BATCH_SIZE,
    runBatch: () =>
      deps.verifications.deleteExpired(
        new Date(deps.clock.now().getTime() - EXPIRED_VERIFICATIONS_KEPT_MS),
        VERIFICATION_DELETE_BATCH_SIZE,
      ),
  };
}
