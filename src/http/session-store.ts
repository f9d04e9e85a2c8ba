import session from 'express-session';
import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';

const FALLBACK_TTL_MS = 30 * 60_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;

/**
 * express-session store on the app's SQLite file: sessions survive a restart and need no other
 * service. Any express-session store (connect-redis, say) can take its place in app.ts.
 */
export class SqliteSessionStore extends session.Store {
  private readonly statements;
  private lastSweepAt = 0;

  constructor(
    db: Db,
    private readonly clock: Clock,
  ) {
    super();
    this.statements = {
      get: db.prepare('SELECT data, expires_at FROM sessions WHERE sid = ?'),
      set: db.prepare(
        `INSERT INTO sessions (sid, data, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
      ),
      touch: db.prepare('UPDATE sessions SET expires_at = ? WHERE sid = ?'),
      destroy: db.prepare('DELETE FROM sessions WHERE sid = ?'),
      sweep: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
    };
  }

  private expiryOf(data: session.SessionData): number {
    const expires = data.cookie?.expires;
    return expires ? new Date(expires).getTime() : this.clock.now().getTime() + FALLBACK_TTL_MS;
  }

  private sweepNowAndThen(now: number) {
    if (now - this.lastSweepAt < SWEEP_INTERVAL_MS) return;
    this.lastSweepAt = now;
    this.statements.sweep.run(now);
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    try {
      const now = this.clock.now().getTime();
      this.sweepNowAndThen(now);
      const row = this.statements.get.get(sid) as { data: string; expires_at: number } | undefined;
      if (!row || row.expires_at <= now) return callback(null, null);
      callback(null, JSON.parse(row.data) as session.SessionData);
    } catch (error) {
      callback(error);
    }
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    try {
      this.statements.set.run(sid, JSON.stringify(data), this.expiryOf(data));
      callback?.();
    } catch (error) {
      callback?.(error);
    }
  }

  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    try {
      this.statements.touch.run(this.expiryOf(data), sid);
      callback?.();
    } catch (error) {
      callback?.(error);
    }
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    try {
      this.statements.destroy.run(sid);
      callback?.();
    } catch (error) {
      callback?.(error);
    }
  }
}
