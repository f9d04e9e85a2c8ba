import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { Channel, Scope } from './provider.js';

/**
 * Challenges live on the server, by id: the session holds only the id. Every rule that must hold
 * across requests (attempts, single acceptance, a newer code voiding the older) is one
 * conditional write here, so racing requests cannot each see a stale copy.
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

interface ChallengeRow {
  id: string;
  user_id: number;
  scope: Scope;
  phone_e164: string;
  channel: Channel;
  provider: string;
  handle: string | null;
  sent_at: number;
  expires_at: number;
  wrong_attempts: number;
  closed_at: number | null;
  close_reason: CloseReason | null;
}

function toChallenge(row: ChallengeRow): Challenge {
  return {
    id: row.id,
    userId: row.user_id,
    scope: row.scope,
    phone: row.phone_e164,
    channel: row.channel,
    provider: row.provider,
    ...(row.handle === null ? {} : { handle: row.handle }),
    sentAt: row.sent_at,
    expiresAt: row.expires_at,
    wrongAttempts: row.wrong_attempts,
    closedAt: row.closed_at,
    closeReason: row.close_reason,
  };
}

export function createSqliteChallengeStore(db: Db, clock: Clock): ChallengeStore {
  const insert = db.prepare(
    `INSERT INTO challenges (id, user_id, scope, phone_e164, channel, provider, handle, sent_at, expires_at)
     VALUES (@id, @userId, @scope, @phone, @channel, @provider, @handle, @sentAt, @expiresAt)`,
  );
  const byId = db.prepare('SELECT * FROM challenges WHERE id = ?');
  const openOf = db.prepare(
    `SELECT * FROM challenges WHERE user_id = ? AND scope = ? AND closed_at IS NULL
     ORDER BY sent_at DESC, rowid DESC LIMIT 1`,
  );
  const closeOthers = db.prepare(
    `UPDATE challenges SET closed_at = @now, close_reason = @reason
     WHERE user_id = @userId AND scope = @scope AND id <> @keepId AND closed_at IS NULL
     RETURNING *`,
  );
  const reserve = db.prepare(
    `UPDATE challenges SET wrong_attempts = wrong_attempts + 1
     WHERE id = ? AND closed_at IS NULL AND wrong_attempts < ?
     RETURNING wrong_attempts`,
  );
  const release = db.prepare(
    'UPDATE challenges SET wrong_attempts = wrong_attempts - 1 WHERE id = ? AND wrong_attempts > 0',
  );
  const close = db.prepare(
    'UPDATE challenges SET closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL',
  );
  const deleteExpired = db.prepare(
    `DELETE FROM challenges WHERE id IN (
       SELECT id FROM challenges WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`,
  );

  return {
    async create(challenge) {
      insert.run({ ...challenge, handle: challenge.handle ?? null });
      return { ...challenge, wrongAttempts: 0, closedAt: null, closeReason: null };
    },
    async findById(id) {
      const row = byId.get(id) as ChallengeRow | undefined;
      return row ? toChallenge(row) : null;
    },
    async findOpen(userId, scope) {
      const row = openOf.get(userId, scope) as ChallengeRow | undefined;
      return row ? toChallenge(row) : null;
    },
    async closeOthers(userId, scope, keepId, reason) {
      const rows = closeOthers.all({ now: clock.now().getTime(), reason, userId, scope, keepId });
      return (rows as ChallengeRow[]).map(toChallenge);
    },
    async reserveAttempt(id, max) {
      const row = reserve.get(id, max) as { wrong_attempts: number } | undefined;
      return row ? row.wrong_attempts : null;
    },
    async releaseAttempt(id) {
      release.run(id);
    },
    async close(id, reason) {
      return close.run(clock.now().getTime(), reason, id).changes === 1;
    },
    async deleteExpired(before, batchSize) {
      return deleteExpired.run(before.getTime(), batchSize).changes;
    },
  };
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
