import type session from 'express-session';

/**
 * A session store that can end a session id for good, answering whether it was still live.
 * Backends: src/stores/sql/session-store.ts (SQLite, PostgreSQL).
 */
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
