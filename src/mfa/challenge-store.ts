import type { Clock } from '../clock.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { Channel, Scope } from './provider.js';

/**
 * Challenges live on the server, by id: the session holds only the id. Every rule that must hold
 * across requests (attempts, single acceptance, a newer code voiding the older) is one
 * conditional write here, so racing requests cannot each see a stale copy.
 * Backends: src/stores/sql/challenge-store.ts (SQLite, PostgreSQL), src/stores/redis/challenge-store.ts.
 */

/** Why a challenge can no longer be answered. */
export type CloseReason = 'accepted' | 'used_up' | 'replaced' | 'expired' | 'locked';

/** One code, sent for one scope to one number by one provider. Never holds the code. */
export interface Challenge {
  id: string;
  userId: number;
  scope: Scope;
  phone: string;
  channel: Channel;
  provider: string;
  handle?: string;
  sentAt: number;
  expiresAt: number;
  /** Attempts used, counting one reserved by a check still in flight. */
  wrongAttempts: number;
  closedAt: number | null;
  closeReason: CloseReason | null;
}

export type NewChallenge = Omit<Challenge, 'wrongAttempts' | 'closedAt' | 'closeReason'>;

export interface ChallengeStore {
  create(challenge: NewChallenge): Promise<Challenge>;
  findById(id: string): Promise<Challenge | null>;
  /** The newest challenge of an account in a scope that is still open. */
  findOpen(userId: number, scope: Scope): Promise<Challenge | null>;
  /** Closes every open challenge of the account in the scope but `keepId`; returns those it closed. */
  closeOthers(userId: number, scope: Scope, keepId: string, reason: CloseReason): Promise<Challenge[]>;
  /**
   * Takes one attempt if the challenge is open and has fewer than `max` used. Returns the attempts
   * now used, or null when none was left (or it is closed).
   */
  reserveAttempt(id: string, max: number): Promise<number | null>;
  /** Gives back an attempt whose code was never compared (the provider did not answer). */
  releaseAttempt(id: string): Promise<void>;
  /** Closes an open challenge. True only for the one call that closed it. */
  close(id: string, reason: CloseReason): Promise<boolean>;
  /** Deletes up to `batchSize` challenges that expired before `before`; returns how many went. */
  deleteExpired(before: Date, batchSize: number): Promise<number>;
}

/** Expired challenges are kept a day (for the record of a late answer), then deleted. */
const EXPIRED_CHALLENGES_KEPT_MS = 24 * 60 * 60_000;
const CHALLENGE_DELETE_BATCH_SIZE = 500;

export function createExpiredChallengesTask(deps: {
  challenges: ChallengeStore;
  clock: Clock;
}): HousekeepingTask {
  return {
    name: 'expired challenges',
    batchSize: CHALLENGE_DELETE_BATCH_SIZE,
    runBatch: () =>
      deps.challenges.deleteExpired(
        new Date(deps.clock.now().getTime() - EXPIRED_CHALLENGES_KEPT_MS),
        CHALLENGE_DELETE_BATCH_SIZE,
      ),
  };
}
