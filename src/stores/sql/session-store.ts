import session from 'express-session';
import type { Clock } from '../../clock.js';
import type { RetiringSessionStore } from '../../http/session-store.js';
import type { SqlDatabase } from './database.js';
import { isSqliteBusy } from './errors.js';

const FALLBACK_TTL_MS = 30 * 60_000;
/**
 * A tombstone lasts at least this long, even for a session about to expire: far longer than any
 * request can still be running (each provider call has a deadline of seconds), so no late save
 * outlives it.
 */
const TOMBSTONE_MIN_LIFETIME_MS = 30 * 60_000;
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
 */
export class SqlSessionStore extends session.Store implements RetiringSessionStore {
  constructor(
    private readonly database: SqlDatabase,
    private readonly clock: Clock,
    private readonly options: { busyRetryDelaysMs?: readonly number[] } = {},
  ) {
    super();
  }

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
  }

  /**
   * Housekeeping (src/stores/sql/housekeeping.ts), never a request: deletes at most `batchSize`
   * sessions past their expiry, soonest expired first, and says how many went. A small batch keeps
   * each statement short (SQLite's runs on the event loop; PostgreSQL's holds row locks).
   */
  async deleteExpiredSessions(now: Date, batchSize: number): Promise<number> {
    const result = await this.db
      .deleteFrom('sessions')
      .where('sid', 'in', (eb) =>
        eb
          .selectFrom('sessions')
          .select('sid')
          .where('expires_at', '<=', now.getTime())
          .orderBy('expires_at')
          .limit(batchSize),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** The same for tombstones: past their time no save of that id can still be on its way. */
  async deleteExpiredTombstones(now: Date, batchSize: number): Promise<number> {
    const result = await this.db
      .deleteFrom('session_tombstones')
      .where('sid', 'in', (eb) =>
        eb
          .selectFrom('session_tombstones')
          .select('sid')
          .where('expires_at', '<=', now.getTime())
          .orderBy('expires_at')
          .limit(batchSize),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.runRetryingWhileBusy(async () => {
      const now = this.clock.now().getTime();
      const row = await this.db
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
        )
        .executeTakeFirst();
      if (!row || row.expires_at <= now) return null;
      return JSON.parse(row.data) as session.SessionData;
    }, callback);
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const json = JSON.stringify(data);
    const expiresAt = this.expiryOf(data);
    this.runRetryingWhileBusy(
      async () => {
        // INSERT ... SELECT ... WHERE NOT EXISTS: the tombstone check and the write are one statement.
        // The casts tell PostgreSQL the parameters' types (a bare SELECT $1 would be text).
        await this.db
          .insertInto('sessions')
          .columns(['sid', 'data', 'expires_at'])
          .expression(
            this.db
              .selectNoFrom((eb) => [
                eb.cast<string>(eb.val(sid), 'text').as('sid'),
                eb.cast<string>(eb.val(json), 'text').as('data'),
                eb.cast<number>(eb.val(expiresAt), 'bigint').as('expires_at'),
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
            })),
          )
          .execute();
      },
      (error) => callback?.(error ?? undefined),
    );
  }

  /**
   * Pushes the idle deadline on (rolling sessions), once. It is a refresh the page does not need:
   * when SQLite is locked it is skipped, and the next request refreshes it.
   */
  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    this.db
      .updateTable('sessions')
      .set({ expires_at: this.expiryOf(data) })
      .where('sid', '=', sid)
      .execute()
      .then(
        () => callback?.(),
        (error: unknown) => callback?.(isSqliteBusy(error) ? undefined : error),
      );
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.runRetryingWhileBusy(
      () => this.endSession(sid),
      (error) => callback?.(error ?? undefined),
    );
  }

  retireSession(sid: string, callback: (err: unknown, wasLive?: boolean) => void): void {
    this.runRetryingWhileBusy(() => this.endSession(sid), callback);
  }
}
