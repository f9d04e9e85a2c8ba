import session from 'express-session';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import {
  byLastSeen,
  sessionHandleOf,
  signedInUserIdOf,
  toAccountSession,
  type AccountSession,
  type AccountSessions,
} from '../../auth/account-sessions.js';
import type { RetiringSessionStore } from '../../http/session-store.js';
import type { SqlDatabase } from './database.js';
import { isSqliteBusy } from './errors.js';
import { prepareQuery } from './prepared-query.js';
import type { Schema } from './schema.js';

const FALLBACK_TTL_MS = 30 * 60_000;
/**
 * A tombstone lasts at least this long, even for a session about to expire: far longer than any
 * request can still be running (each provider call has a deadline of seconds), so no late save
 * outlives it.
 */
const TOMBSTONE_MIN_LIFETIME_MS = 30 * 60_000;
/** A touch that would move a deadline by less than this writes nothing (see touch). */
const TOUCH_GRANULARITY_MS = 60_000;
/**
 * When another process holds SQLite's write lock, wait this long (in turn) and try again before
 * failing. The waits are timers, so other requests go on meanwhile; with no busy_timeout
 * (REQUEST_BUSY_TIMEOUT_MS in database.ts) a save gives up within about 0.4 s and the person sees
 * the 503 page. PostgreSQL waits for its row locks itself, so this only ever applies to SQLite.
 */
export const SESSION_STORE_BUSY_RETRY_DELAYS_MS: readonly number[] = [20, 40, 80, 160];

type Callback<T = void> = (err: unknown, result?: T) => void;

/**
 * express-session store on the app's database, SQLite or PostgreSQL: sessions survive a restart,
 * and on PostgreSQL every instance sees the same ones.
 *
 * A destroyed session id leaves a tombstone until the session's own expiry. Race it closes: a
 * request still waiting on a code provider when the person logs out would otherwise save the
 * session back when it ends (express-session saves after every response), and the logged-out
 * cookie would work again. `set` never writes a tombstoned id and `get` never returns one, so
 * even a save that slips in between a tombstone and the delete that follows it is never read.
 *
 * Each row also names the account it is signed in as (user_id, from the signedIn slot, written
 * with every save), so an account's sessions can be listed and ended (AccountSessions). Ending
 * one is the same tombstone as a logout.
 */
export class SqlSessionStore extends session.Store implements RetiringSessionStore, AccountSessions {
  constructor(
    private readonly database: SqlDatabase,
    private readonly clock: Clock,
    private readonly options: { busyRetryDelaysMs?: readonly number[] } = {},
  ) {
    super();
    this.queries = preparedSessionQueries(database.db);
  }

  /** Deadlines read by get, for the touch at the end of the same request (see touch). */
  private readonly storedDeadlines = createDeadlineNotes();

  /** The queries of every request with a session, built once (prepared-query.ts). */
  private readonly queries: ReturnType<typeof preparedSessionQueries>;

  private get db() {
    return this.database.db;
  }

  private expiryOf(data: session.SessionData): number {
    const expires = data.cookie?.expires;
    return expires ? new Date(expires).getTime() : this.clock.now().getTime() + FALLBACK_TTL_MS;
  }

  /** Runs an operation; while SQLite is locked elsewhere, retries after short timer waits. */
  private runRetryingWhileBusy<T>(operation: () => Promise<T>, callback: Callback<T>, attempt = 0): void {
    operation().then(
      (result) => callback(null, result),
      (error: unknown) => {
        const delays = this.options.busyRetryDelaysMs ?? SESSION_STORE_BUSY_RETRY_DELAYS_MS;
        const delay = delays[attempt];
        if (isSqliteBusy(error) && delay !== undefined) {
          setTimeout(() => this.runRetryingWhileBusy(operation, callback, attempt + 1), delay);
        } else {
          callback(error);
        }
      },
    );
  }

  /**
   * Ends an id: the tombstone's insert is the one conditional write that decides "was it live?",
   * so of two requests retiring one id exactly one hears true. The session row goes after it.
   */
  private async endSession(sid: string): Promise<boolean> {
    const now = this.clock.now().getTime();
    // It all waits for the disk: the row's delete must not be a relaxed write a power cut can roll
    // back (RELAXED_DURABILITY_TABLES) after its tombstone has been swept.
    return this.database.durably(async () => {
      const row = await this.db
        .selectFrom('sessions')
        .select('expires_at')
        .where('sid', '=', sid)
        .executeTakeFirst();
      const buryUntil = Math.max(row?.expires_at ?? 0, now + TOMBSTONE_MIN_LIFETIME_MS);
      const buried = await this.db
        .insertInto('session_tombstones')
        .values({ sid, expires_at: buryUntil })
        .onConflict((conflict) => conflict.column('sid').doNothing())
        .executeTakeFirst();
      await this.db.deleteFrom('sessions').where('sid', '=', sid).execute();
      return buried.numInsertedOrUpdatedRows === 1n;
    });
  }

  /**
   * Housekeeping (src/stores/sql/housekeeping.ts), never a request: deletes at most `batchSize`
   * sessions past their expiry, soonest expired first, and says how many went. A small batch keeps
   * each statement short (SQLite's runs on the event loop; PostgreSQL's holds row locks).
   */
  deleteExpiredSessions(now: Date, batchSize: number): Promise<number> {
    return this.deleteExpired('sessions', now, batchSize);
  }

  /** The same for tombstones: past their time no save of that id can still be on its way. */
  deleteExpiredTombstones(now: Date, batchSize: number): Promise<number> {
    return this.deleteExpired('session_tombstones', now, batchSize);
  }

  private async deleteExpired(table: 'sessions' | 'session_tombstones', now: Date, batchSize: number) {
    const result = await this.db
      .deleteFrom(table)
      .where('sid', 'in', (eb) =>
        eb
          .selectFrom(table)
          .select('sid')
          .where('expires_at', '<=', now.getTime())
          .orderBy('expires_at')
          .limit(batchSize),
      )
      // Again on the row itself: on PostgreSQL a session whose deadline a page moved on while this
      // waited for its lock is checked anew here (the IN list alone would end it).
      .where('expires_at', '<=', now.getTime())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.runRetryingWhileBusy(async () => {
      const now = this.clock.now().getTime();
      const row = await this.queries.live.first({ sid });
      if (!row || row.expires_at <= now) return null;
      this.storedDeadlines.note(sid, row.expires_at);
      return JSON.parse(row.data) as session.SessionData;
    }, callback);
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    this.storedDeadlines.forget(sid);
    const json = JSON.stringify(data);
    const expiresAt = this.expiryOf(data);
    const userId = signedInUserIdOf(data);
    this.runRetryingWhileBusy(
      async () => {
        await this.queries.save.run({ sid, data: json, expiresAt, userId });
      },
      (error) => callback?.(error ?? undefined),
    );
  }

  /**
   * Pushes the idle deadline on, once, and only when it would move by more than a minute: a write
   * on every page would cost more than the page (an UPDATE that matches no row writes nothing). It
   * is a refresh the page does not need: when SQLite is locked it is skipped, and a later request
   * refreshes it.
   */
  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const expiresAt = this.expiryOf(data);
    // The deadline this request read with its session: when it would not move by a minute, the
    // UPDATE would change nothing, so it is not sent at all.
    const stored = this.storedDeadlines.take(sid);
    if (stored !== undefined && expiresAt - stored < TOUCH_GRANULARITY_MS) {
      callback?.();
      return;
    }
    this.queries.touch.run({ sid, expiresAt, movedBefore: expiresAt - TOUCH_GRANULARITY_MS }).then(
      () => callback?.(),
      (error: unknown) => callback?.(isSqliteBusy(error) ? undefined : error),
    );
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.storedDeadlines.forget(sid);
    this.runRetryingWhileBusy(
      () => this.endSession(sid),
      (error) => callback?.(error ?? undefined),
    );
  }

  retireSession(sid: string, callback: (err: unknown, wasLive?: boolean) => void): void {
    this.storedDeadlines.forget(sid);
    this.runRetryingWhileBusy(() => this.endSession(sid), callback);
  }

  /** An account's sessions (by the user_id index), unless their ids have ended; rare, so not prepared. */
  private rowsOfUser(userId: number) {
    return this.db
      .selectFrom('sessions')
      .select(['sid', 'data', 'expires_at'])
      .where('user_id', '=', userId)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('session_tombstones')
              .select('session_tombstones.sid')
              .whereRef('session_tombstones.sid', '=', 'sessions.sid'),
          ),
        ),
      )
      .execute();
  }

  /** Promise form of runRetryingWhileBusy, for the AccountSessions methods. */
  private retryingWhileBusy<T>(operation: () => Promise<T>): Promise<T> {
    return new Promise((resolve, reject) =>
      this.runRetryingWhileBusy(operation, (error, result) => (error ? reject(error) : resolve(result as T))),
    );
  }

  async listForUser(userId: number): Promise<AccountSession[]> {
    const now = this.clock.now().getTime();
    const rows = await this.retryingWhileBusy(() => this.rowsOfUser(userId));
    return rows
      .map((row) =>
        toAccountSession(row.sid, JSON.parse(row.data) as session.SessionData, userId, row.expires_at, now),
      )
      .filter((entry) => entry !== null)
      .sort(byLastSeen);
  }

  async endOne(userId: number, handle: string): Promise<boolean> {
    // Only among this account's own live rows: a handle of another account's session matches nothing.
    const now = this.clock.now().getTime();
    const rows = await this.retryingWhileBusy(() => this.rowsOfUser(userId));
    const row = rows.find(
      (candidate) => candidate.expires_at > now && sessionHandleOf(candidate.sid) === handle,
    );
    if (!row) return false;
    return this.retryingWhileBusy(() => this.endSession(row.sid));
  }

  /**
   * One id after another, each with its own tombstone: a save of any of them that comes later
   * finds it. A session that signs in while this runs is a new login, and is not ended.
   */
  async endAllForUser(userId: number, options: { exceptSid?: string } = {}): Promise<number> {
    const now = this.clock.now().getTime();
    const rows = await this.retryingWhileBusy(() => this.rowsOfUser(userId));
    let ended = 0;
    for (const row of rows) {
      if (row.sid === options.exceptSid) continue;
      // Expired rows are ended too (a tombstone costs little), but only live ones are counted.
      const wasLive = await this.retryingWhileBusy(() => this.endSession(row.sid));
      if (wasLive && row.expires_at > now) ended += 1;
    }
    return ended;
  }
}

/** Requests in flight at once, far beyond: notes never taken (a request that saved instead) are dropped past it. */
const MAX_DEADLINE_NOTES = 10_000;

/**
 * A session's stored deadline as its request read it, until that request's touch takes it. Not a
 * cache across requests: each note lives from a request's get to its touch, so another instance's
 * later change is read afresh by the next request.
 */
function createDeadlineNotes() {
  const notes = new Map<string, number>();
  return {
    note(sid: string, expiresAt: number) {
      if (notes.size >= MAX_DEADLINE_NOTES) notes.clear();
      notes.set(sid, expiresAt);
    },
    take(sid: string): number | undefined {
      const expiresAt = notes.get(sid);
      notes.delete(sid);
      return expiresAt;
    },
    forget(sid: string) {
      notes.delete(sid);
    },
  };
}

function preparedSessionQueries(db: Kysely<Schema>) {
  return {
    /** A session's row, unless its id has ended (a tombstone). */
    live: prepareQuery(db, ({ sid }: { sid: string }) =>
      db
        .selectFrom('sessions')
        .select(['data', 'expires_at'])
        .where('sid', '=', sid)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('session_tombstones')
                .select('session_tombstones.sid')
                .whereRef('session_tombstones.sid', '=', 'sessions.sid'),
            ),
          ),
        ),
    ),
    /**
     * Writes a session unless its id has ended: INSERT ... SELECT ... WHERE NOT EXISTS, so the
     * tombstone check and the write are one statement. The casts tell PostgreSQL the parameters'
     * types (a bare SELECT $1 would be text).
     */
    save: prepareQuery(
      db,
      ({
        sid,
        data,
        expiresAt,
        userId,
      }: {
        sid: string;
        data: string;
        expiresAt: number;
        userId: number | null;
      }) =>
        db
          .insertInto('sessions')
          .columns(['sid', 'data', 'expires_at', 'user_id'])
          .expression(
            db
              .selectNoFrom((eb) => [
                eb.cast<string>(eb.val(sid), 'text').as('sid'),
                eb.cast<string>(eb.val(data), 'text').as('data'),
                eb.cast<number>(eb.val(expiresAt), 'bigint').as('expires_at'),
                eb.cast<number | null>(eb.val(userId), 'integer').as('user_id'),
              ])
              .where(({ not, exists, selectFrom }) =>
                not(
                  exists(
                    selectFrom('session_tombstones')
                      .select('session_tombstones.sid')
                      .where('session_tombstones.sid', '=', sid),
                  ),
                ),
              ),
          )
          .onConflict((conflict) =>
            conflict.column('sid').doUpdateSet((eb) => ({
              data: eb.ref('excluded.data'),
              expires_at: eb.ref('excluded.expires_at'),
              user_id: eb.ref('excluded.user_id'),
            })),
          ),
    ),

    /** Moves the deadline on, only when it moves by more than TOUCH_GRANULARITY_MS. */
    touch: prepareQuery(
      db,
      ({ sid, expiresAt, movedBefore }: { sid: string; expiresAt: number; movedBefore: number }) =>
        db
          .updateTable('sessions')
          .set({ expires_at: expiresAt })
          .where('sid', '=', sid)
          .where('expires_at', '<', movedBefore),
    ),
  };
}
