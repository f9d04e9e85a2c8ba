import session from 'express-session';
import type { Clock } from '../clock.js';
import { isDatabaseBusy, type Db } from '../db/open.js';

const FALLBACK_TTL_MS = 30 * 60_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;
/**
 * A tombstone lasts at least this long, even for a session about to expire: far longer than any
 * request can still be running (each provider call has a deadline of seconds), so no late save
 * outlives it.
 */
const TOMBSTONE_MIN_LIFETIME_MS = 30 * 60_000;
/**
 * When another process holds SQLite's write lock, wait this long (in turn) and try again before
 * failing. The waits are timers, so other requests go on meanwhile; with the tiny busy_timeout
 * (db/open.ts) a save gives up within about 0.4 s and the person sees the 503 page.
 */
export const SESSION_STORE_BUSY_RETRY_DELAYS_MS: readonly number[] = [20, 40, 80, 160];

type Callback<T = void> = (err: unknown, result?: T) => void;

/** A session store that can end a session id for good, answering whether it was still live. */
export interface RetiringSessionStore extends session.Store {
  /**
   * Marks `sid` as ended (as destroy does) in one conditional write, and reports whether it was
   * still live. `false` means it had already been destroyed: a logout, or another regeneration.
   */
  retireSession(sid: string, callback: (err: unknown, wasLive?: boolean) => void): void;
}

export function canRetireSessions(store: session.Store): store is RetiringSessionStore {
  return typeof (store as Partial<RetiringSessionStore>).retireSession === 'function';
}

/**
 * express-session store on the app's SQLite file: sessions survive a restart and need no other
 * service. Any express-session store (connect-redis, say) can take its place in app.ts.
 *
 * A destroyed session id leaves a tombstone until the session's own expiry. Race it closes: a
 * request still waiting on a code provider when the person logs out would otherwise save the
 * session back when it ends (express-session saves after every response), and the logged-out
 * cookie would work again. `set` never writes a tombstoned id and `get` never returns one.
 */
export class SqliteSessionStore extends session.Store implements RetiringSessionStore {
  private readonly statements;
  private readonly endSession;
  private lastSweepAt = 0;

  constructor(
    db: Db,
    private readonly clock: Clock,
    private readonly options: { busyRetryDelaysMs?: readonly number[] } = {},
  ) {
    super();
    this.statements = {
      get: db.prepare(
        `SELECT data, expires_at FROM sessions
         WHERE sid = ? AND NOT EXISTS (SELECT 1 FROM session_tombstones t WHERE t.sid = sessions.sid)`,
      ),
      set: db.prepare(
        `INSERT INTO sessions (sid, data, expires_at)
         SELECT @sid, @data, @expiresAt
         WHERE NOT EXISTS (SELECT 1 FROM session_tombstones WHERE sid = @sid)
         ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
      ),
      touch: db.prepare('UPDATE sessions SET expires_at = ? WHERE sid = ?'),
      expiryOf: db.prepare('SELECT expires_at FROM sessions WHERE sid = ?'),
      // The conditional write: only the first request to end an id inserts its tombstone.
      bury: db.prepare(
        'INSERT INTO session_tombstones (sid, expires_at) VALUES (?, ?) ON CONFLICT (sid) DO NOTHING',
      ),
      delete: db.prepare('DELETE FROM sessions WHERE sid = ?'),
      sweepSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
      sweepTombstones: db.prepare('DELETE FROM session_tombstones WHERE expires_at <= ?'),
    };
    this.endSession = db.transaction((sid: string): boolean => {
      const now = this.clock.now().getTime();
      const row = this.statements.expiryOf.get(sid) as { expires_at: number } | undefined;
      const buryUntil = Math.max(row?.expires_at ?? 0, now + TOMBSTONE_MIN_LIFETIME_MS);
      const wasLive = this.statements.bury.run(sid, buryUntil).changes === 1;
      this.statements.delete.run(sid);
      return wasLive;
    });
  }

  private expiryOf(data: session.SessionData): number {
    const expires = data.cookie?.expires;
    return expires ? new Date(expires).getTime() : this.clock.now().getTime() + FALLBACK_TTL_MS;
  }

  /** Runs a statement; while the database is locked elsewhere, retries after short timer waits. */
  private runRetryingWhileBusy<T>(operation: () => T, callback: Callback<T>, attempt = 0): void {
    let result: T;
    try {
      result = operation();
    } catch (error) {
      const delays = this.options.busyRetryDelaysMs ?? SESSION_STORE_BUSY_RETRY_DELAYS_MS;
      const delay = delays[attempt];
      if (isDatabaseBusy(error) && delay !== undefined) {
        setTimeout(() => this.runRetryingWhileBusy(operation, callback, attempt + 1), delay);
      } else {
        callback(error);
      }
      return;
    }
    callback(null, result);
  }

  /** Housekeeping that can wait: a locked database skips it until the next interval. */
  private sweepNowAndThen(now: number) {
    if (now - this.lastSweepAt < SWEEP_INTERVAL_MS) return;
    this.lastSweepAt = now;
    try {
      this.statements.sweepSessions.run(now);
      this.statements.sweepTombstones.run(now);
    } catch (error) {
      if (!isDatabaseBusy(error)) throw error;
    }
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.runRetryingWhileBusy(() => {
      const now = this.clock.now().getTime();
      this.sweepNowAndThen(now);
      const row = this.statements.get.get(sid) as { data: string; expires_at: number } | undefined;
      if (!row || row.expires_at <= now) return null;
      return JSON.parse(row.data) as session.SessionData;
    }, callback);
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    this.runRetryingWhileBusy(
      () => this.statements.set.run({ sid, data: JSON.stringify(data), expiresAt: this.expiryOf(data) }),
      (error) => callback?.(error ?? undefined),
    );
  }

  /**
   * Pushes the idle deadline on (rolling sessions), once. It is a refresh the page does not need:
   * when the database is locked it is skipped, and the next request refreshes it.
   */
  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    try {
      this.statements.touch.run(this.expiryOf(data), sid);
      callback?.();
    } catch (error) {
      callback?.(isDatabaseBusy(error) ? undefined : error);
    }
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
