import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { msUntilUtcMidnight, utcDay } from '../fraud/counters.js';
import type { HousekeepingTask } from '../housekeeping.js';
import type { RateLimitStore } from '../http/rate-limit.js';

/**
 * `Idempotency-Key` on POST /api/v1/verifications: a caller that retries a request (its answer
 * was lost on the way) gets the first answer again instead of a second code to the phone. The key
 * is claimed by one insert before the send, so of two requests with it at once one sends and the
 * other is told the first is still in flight (409); the answer is then kept a day for replays.
 */

export interface StoredResponse {
  status: number;
  /** The JSON body as it was sent. */
  body: string;
}

export interface IdempotencyRecord {
  requestHash: string;
  /** The answer, or null while the first request is still in flight. */
  response: StoredResponse | null;
}

/** Backend: src/stores/sql/idempotency-store.ts (SQLite, PostgreSQL). */
export interface IdempotencyStore {
  /**
   * Claims the key's Idempotency-Key for a request with this digest: by one insert, or, in the
   * same statement, by taking over a row made before `replaceBefore` (older than a day: it counts
   * as gone) or left in flight since before `abandonedBefore` (its instance stopped mid-send).
   * `claimedAt` names this claim for complete() and release(). Not claimed: the row as it is.
   */
  claim(request: {
    keyId: number;
    idempotencyKey: string;
    requestHash: string;
    now: Date;
    replaceBefore: Date;
    abandonedBefore: Date;
  }): Promise<{ claimed: true; claimedAt: number } | { claimed: false; existing: IdempotencyRecord }>;
  /** Keeps the answer of the claim made at `claimedAt`. */
  complete(keyId: number, idempotencyKey: string, claimedAt: number, response: StoredResponse): Promise<void>;
  /** Drops the claim made at `claimedAt` while it is in flight: the caller may retry with the same key. */
  release(keyId: number, idempotencyKey: string, claimedAt: number): Promise<void>;
  /** Deletes up to `batchSize` rows made before `before`; returns how many went. */
  deleteOlderThan(before: Date, batchSize: number): Promise<number>;
}

/** How long an answer is replayed; older rows are ignored when read and deleted by housekeeping. */
export const IDEMPOTENCY_KEPT_MS = 24 * 60 * 60_000;
/**
 * A claim still in flight after this long was left by an instance that stopped mid-send: every
 * provider call has a deadline of seconds, so no live request holds one this long.
 */
export const IDEMPOTENCY_ABANDONED_MS = 5 * 60_000;
const IDEMPOTENCY_DELETE_BATCH_SIZE = 500;

/**
 * Refusals (4xx answers: nothing was sent) kept per API key and UTC day. Each fresh
 * Idempotency-Key would otherwise keep a row for a day, limited only by the flood guard; a code
 * that went out is kept whatever the count (the key's send limits bound those). Past the cap a
 * refusal is answered, not kept: its retry is decided again, and since nothing was sent the first
 * time, a retry can never make a second code of it. Refusing the request instead (429) would stop
 * a caller's real sends for a day.
 */
export const REFUSALS_KEPT_PER_KEY_PER_DAY = 1000;
export const refusalsKeptKey = (keyId: number, now: Date) =>
  `api:idempotency:refusals:${keyId}:${utcDay(now)}`;

/** 1 to 255 printable ASCII characters, as the design says. */
const IDEMPOTENCY_KEY_SHAPE = /^[\x20-\x7e]{1,255}$/;

export function isValidIdempotencyKey(value: string): boolean {
  return IDEMPOTENCY_KEY_SHAPE.test(value);
}

/** JSON with every object's keys sorted: the same body however its fields were ordered. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, field]) => field !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, field]) => `${JSON.stringify(key)}:${canonicalJson(field)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 of the body's canonical JSON: what tells "the same request again" from "another one". */
export function requestDigest(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
}

export type IdempotencyStart =
  | {
      kind: 'claimed';
      /** Keeps the answer for replays (a refusal past the key's daily cap is released instead). */
      finish(response: StoredResponse): Promise<void>;
      /** Drops the claim: nothing happened that a retry with the same key would repeat. */
      release(): Promise<void>;
    }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'in_progress' }
  | { kind: 'reused' };

export interface Idempotency {
  begin(keyId: number, idempotencyKey: string, body: unknown): Promise<IdempotencyStart>;
}

export function createIdempotency(deps: {
  store: IdempotencyStore;
  clock: Clock;
  limits: RateLimitStore;
}): Idempotency {
  const { store, clock, limits } = deps;

  /** Whether a refusal may still be kept today for this key (see REFUSALS_KEPT_PER_KEY_PER_DAY). */
  async function mayKeepRefusal(keyId: number) {
    const now = clock.now();
    const kept = await limits.increment(refusalsKeptKey(keyId, now), msUntilUtcMidnight(now));
    return kept.count <= REFUSALS_KEPT_PER_KEY_PER_DAY;
  }

  return {
    async begin(keyId, idempotencyKey, body) {
      const requestHash = requestDigest(body);
      const now = clock.now();
      const claim = await store.claim({
        keyId,
        idempotencyKey,
        requestHash,
        now,
        replaceBefore: new Date(now.getTime() - IDEMPOTENCY_KEPT_MS),
        abandonedBefore: new Date(now.getTime() - IDEMPOTENCY_ABANDONED_MS),
      });
      if (claim.claimed) {
        const { claimedAt } = claim;
        return {
          kind: 'claimed',
          async finish(response) {
            const refusal = response.status >= 400 && response.status < 500;
            if (refusal && !(await mayKeepRefusal(keyId))) {
              return store.release(keyId, idempotencyKey, claimedAt);
            }
            return store.complete(keyId, idempotencyKey, claimedAt, response);
          },
          release: () => store.release(keyId, idempotencyKey, claimedAt),
        };
      }
      const { existing } = claim;
      // Another body under the same key is a caller's mistake, told whether or not the first is done.
      if (existing.requestHash !== requestHash) return { kind: 'reused' };
      return existing.response ? { kind: 'replay', response: existing.response } : { kind: 'in_progress' };
    },
  };
}

export function createOldIdempotencyKeysTask(deps: {
  store: IdempotencyStore;
  clock: Clock;
}): HousekeepingTask {
  return {
    name: 'old Idempotency-Keys',
    batchSize: IDEMPOTENCY_DELETE_BATCH_SIZE,
    runBatch: () =>
      deps.store.deleteOlderThan(
        new Date(deps.clock.now().getTime() - IDEMPOTENCY_KEPT_MS),
        IDEMPOTENCY_DELETE_BATCH_SIZE,
      ),
  };
}
