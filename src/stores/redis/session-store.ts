import session from 'express-session';
import {
  byLastSeen,
  sessionHandleOf,
  signedInUserIdOf,
  toAccountSession,
  type AccountSession,
  type AccountSessions,
} from '../../auth/account-sessions.js';
import type { RetiringSessionStore } from '../../http/session-store.js';
import { StoreUnavailableError } from '../errors.js';
import { callRedis, defineLuaScript, type RedisCommands, type RedisStoreOptions } from './commands.js';

/**
 * express-session store shared by every instance: a session started on one is read by any other.
 * It keeps the promise of the SQLite store (src/http/session-store.ts): a destroyed id leaves a
 * tombstone until the session's own expiry, at least TOMBSTONE_MIN_LIFETIME_MS, and `set` never
 * writes a tombstoned id. Race it closes: a request still waiting on a code provider when the
 * person logs out (on this instance or another) would otherwise save the session back when it
 * ends, and the logged-out cookie would work again.
 *
 * Our own small store rather than connect-redis: of its four methods, `set` has to become a
 * conditional write, `destroy` has to leave a tombstone and `retireSession` does not exist there,
 * so only `get` would be left; and every call here goes through the stores' deadline and becomes
 * StoreUnavailableError (callRedis), which connect-redis, calling the client directly, does not do.
 *
 * Keys, under the store's prefix:
 *   session:<sid>        the session as JSON; its expiry is the session's (the cookie's) expiry
 *   session-ended:<sid>  the tombstone: no data, only a lifetime
 *   user-sessions:<id>   the account's signed-in sessions (AccountSessions): a sorted set of sids,
 *                        scored by each one's expiry (app milliseconds). A save or touch of a
 *                        signed-in session adds or moves its member, drops members past their
 *                        expiry, and keeps the set alive as long as its latest member; listing and
 *                        ending drop members whose session is gone. The scripts that end sessions
 *                        read each session's own signedIn.userId (cjson), never trusting the set
 *                        alone. Like the challenge index, fine on one Redis server, not on Cluster.
 *
 * Time: a lifetime is "the cookie's expiry minus the app's now", handed to Redis as a duration;
 * Redis then counts it down by its own clock (see docs/stores.md).
 */

/** As the SQLite store: a session saved without an expiry (express-session always gives one) lives this long. */
const FALLBACK_TTL_MS = 30 * 60_000;
/**
 * As the SQLite store: far longer than any request can still be running (each provider call has
 * a deadline of seconds), so no late save outlives the tombstone.
 */
const TOMBSTONE_MIN_LIFETIME_MS = 30 * 60_000;

/**
 * Files a signed-in session under its account's set: its member scored by its expiry (app ms),
 * members already past their expiry (before `now`, the app's) dropped, and the set kept as long as
 * its latest member. Called only once the session itself was written or touched (never for an
 * ended id), so it never files a session that is gone.
 */
const FILE_UNDER_ACCOUNT = `
local function fileUnderAccount(index, sid, expiresAt, now)
  redis.call('ZADD', index, expiresAt, sid)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. now)
  local latest = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #latest == 0 then return end
  local keep = tonumber(latest[2]) - tonumber(now)
  if keep > 0 and redis.call('PTTL', index) < keep then redis.call('PEXPIRE', index, keep) end
end
`;

// Conditional on no tombstone, in one step: a retire from another instance cannot slip between
// the check and the write. A session whose expiry has passed is not written.
const SAVE = defineLuaScript(`
${FILE_UNDER_ACCOUNT}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local lifetime = tonumber(ARGV[2])
if lifetime <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', lifetime)
if KEYS[3] then fileUnderAccount(KEYS[3], ARGV[5], ARGV[3], ARGV[4]) end
return 1
`);

// PEXPIRE never creates a key, so a late touch cannot bring a destroyed session back either.
const TOUCH = defineLuaScript(`
${FILE_UNDER_ACCOUNT}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local touched = redis.call('PEXPIRE', KEYS[1], ARGV[1])
if touched == 1 and KEYS[3] then fileUnderAccount(KEYS[3], ARGV[4], ARGV[2], ARGV[3]) end
return touched
`);

/**
 * Whether a session's JSON is signed in as the account (ARGV[1]), read in the script itself so
 * that a member left in an account's set by a session since signed out (or a forged member)
 * never decides what is ended.
 */
const IS_SIGNED_IN_AS = `
local function isSignedInAs(json, userId)
  if not json then return false end
  local ok, data = pcall(cjson.decode, json)
  if not ok or type(data) ~= 'table' or type(data.signedIn) ~= 'table' then return false end
  return data.signedIn.userId == tonumber(userId)
end
`;

/**
 * Retires a session as RETIRE does (the tombstone lasts what it had left, at least the minimum),
 * for the AccountSessions scripts. Returns whether the id was still live.
 */
const RETIRE_ID = `
local function retireId(sessionKey, tombstoneKey, minimum)
  local left = redis.call('PTTL', sessionKey)
  redis.call('DEL', sessionKey)
  if redis.call('EXISTS', tombstoneKey) == 1 then return false end
  local keep = tonumber(minimum)
  if left > keep then keep = left end
  redis.call('SET', tombstoneKey, '1', 'PX', keep)
  return true
end
`;

// The account's sessions as [sid, json, expiry] triples (the expiry by the app's clock, as the
// last save or touch gave it); members whose session is gone are dropped.
const LIST_OF_ACCOUNT = defineLuaScript(`
local found = {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local sid = members[i]
  local json = redis.call('GET', ARGV[1] .. 'session:' .. sid)
  if json then
    table.insert(found, sid)
    table.insert(found, json)
    table.insert(found, members[i + 1])
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
return found
`);

// Ends one listed session (ARGV[2]) of the account (ARGV[3]), only if it is signed in as that account.
const END_ONE_OF_ACCOUNT = defineLuaScript(`
${IS_SIGNED_IN_AS}
${RETIRE_ID}
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
local key = ARGV[1] .. 'session:' .. ARGV[2]
if not isSignedInAs(redis.call('GET', key), ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
if retireId(key, ARGV[1] .. 'session-ended:' .. ARGV[2], ARGV[4]) then return 1 end
return 0
`);

// Ends every session of the account (ARGV[2]) but ARGV[4] (may be ''), in one step: a save of one
// of them from another instance runs before (and is ended) or after (and finds the tombstone).
// Members whose session is gone are dropped; one signed in as someone else is left alone.
const END_ALL_OF_ACCOUNT = defineLuaScript(`
${IS_SIGNED_IN_AS}
${RETIRE_ID}
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[4] then
    local key = ARGV[1] .. 'session:' .. sid
    local json = redis.call('GET', key)
    if not json then
      redis.call('ZREM', KEYS[1], sid)
    elseif isSignedInAs(json, ARGV[2]) then
      redis.call('ZREM', KEYS[1], sid)
      if retireId(key, ARGV[1] .. 'session-ended:' .. sid, ARGV[3]) then ended = ended + 1 end
    end
  end
end
return ended
`);

// Only the first call for an id finds no tombstone: it reports the id live (1). The tombstone
// lasts as long as the session had left, and never less than the minimum.
const RETIRE = defineLuaScript(`
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local keep = tonumber(ARGV[1])
if left > keep then keep = left end
redis.call('SET', KEYS[2], '1', 'PX', keep)
return 1
`);

/** Hands a promise's outcome to an express-session callback, which expects (err) or (null, result). */
function answer<T>(pending: Promise<T>, callback: ((err: unknown, result?: T) => void) | undefined): void {
  pending.then(
    (result) => callback?.(null, result),
    (error: unknown) => callback?.(error),
  );
}

export class RedisSessionStore extends session.Store implements RetiringSessionStore, AccountSessions {
  constructor(
    private readonly redis: RedisCommands,
    private readonly options: RedisStoreOptions,
  ) {
    super();
  }

  private keysOf(sid: string): string[] {
    const prefix = this.options.keyPrefix;
    return [`${prefix}session:${sid}`, `${prefix}session-ended:${sid}`];
  }

  private accountIndexOf(userId: number): string {
    return `${this.options.keyPrefix}user-sessions:${userId}`;
  }

  /** The session's keys, and its account's set when it is signed in. */
  private keysWithIndexOf(sid: string, data: session.SessionData): string[] {
    const userId = signedInUserIdOf(data);
    return userId === null ? this.keysOf(sid) : [...this.keysOf(sid), this.accountIndexOf(userId)];
  }

  private call<T>(operation: () => Promise<T>): Promise<T> {
    return callRedis('sessions', operation, this.options.commandTimeoutMs);
  }

  /** How long the session has left by the app's clock, in whole milliseconds. */
  private lifetimeOf(data: session.SessionData): number {
    const expires = data.cookie?.expires;
    if (!expires) return FALLBACK_TTL_MS;
    return Math.ceil(new Date(expires).getTime() - this.options.clock.now().getTime());
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    const [sessionKey] = this.keysOf(sid);
    const reading = this.call(() => this.redis.sendCommand(['GET', sessionKey!]));
    answer(
      reading.then((reply) =>
        typeof reply === 'string' ? (JSON.parse(reply) as session.SessionData) : null,
      ),
      callback,
    );
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const lifetime = this.lifetimeOf(data);
    const now = this.options.clock.now().getTime();
    const saving = this.call(() =>
      SAVE(this.redis, this.keysWithIndexOf(sid, data), [
        JSON.stringify(data),
        lifetime,
        now + lifetime,
        now,
        sid,
      ]),
    );
    answer(saving, (error) => callback?.(error ?? undefined));
  }

  /**
   * Pushes the idle deadline on (rolling sessions). It is a refresh the page does not need: when
   * Redis does not answer it is skipped, as the SQLite store skips it while the database is
   * locked, and the next request refreshes it.
   */
  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const lifetime = this.lifetimeOf(data);
    const now = this.options.clock.now().getTime();
    const touching = this.call(() =>
      TOUCH(this.redis, this.keysWithIndexOf(sid, data), [lifetime, now + lifetime, now, sid]),
    );
    answer(touching, (error) =>
      callback?.(error instanceof StoreUnavailableError ? undefined : (error ?? undefined)),
    );
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.retireSession(sid, (error) => callback?.(error ?? undefined));
  }

  retireSession(sid: string, callback: (err: unknown, wasLive?: boolean) => void): void {
    const retiring = this.call(() => RETIRE(this.redis, this.keysOf(sid), [TOMBSTONE_MIN_LIFETIME_MS]));
    answer(
      retiring.then((reply) => reply === 1),
      callback,
    );
  }

  /** The account's sessions as stored, with their expiry (app ms), for each one still there. */
  private async storedOfUser(
    userId: number,
  ): Promise<Array<{ sid: string; json: string; expiresAt: number }>> {
    const reply = await this.call(() =>
      LIST_OF_ACCOUNT(this.redis, [this.accountIndexOf(userId)], [this.options.keyPrefix]),
    );
    const flat = Array.isArray(reply) ? (reply as unknown[]) : [];
    const stored: Array<{ sid: string; json: string; expiresAt: number }> = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      stored.push({ sid: String(flat[i]), json: String(flat[i + 1]), expiresAt: Number(flat[i + 2]) });
    }
    return stored;
  }

  async listForUser(userId: number): Promise<AccountSession[]> {
    const now = this.options.clock.now().getTime();
    const stored = await this.storedOfUser(userId);
    return stored
      .map(({ sid, json, expiresAt }) =>
        toAccountSession(sid, JSON.parse(json) as session.SessionData, userId, expiresAt, now),
      )
      .filter((entry) => entry !== null)
      .sort(byLastSeen);
  }

  async endOne(userId: number, handle: string): Promise<boolean> {
    // The handle is a SHA-256 of the id, which Redis's scripts cannot compute: the id is found
    // here among the account's own, and the script checks again that it is the account's.
    const stored = await this.storedOfUser(userId);
    const match = stored.find(({ sid }) => sessionHandleOf(sid) === handle);
    if (!match) return false;
    const reply = await this.call(() =>
      END_ONE_OF_ACCOUNT(
        this.redis,
        [this.accountIndexOf(userId)],
        [this.options.keyPrefix, match.sid, userId, TOMBSTONE_MIN_LIFETIME_MS],
      ),
    );
    return reply === 1;
  }

  async endAllForUser(userId: number, options: { exceptSid?: string } = {}): Promise<number> {
    const reply = await this.call(() =>
      END_ALL_OF_ACCOUNT(
        this.redis,
        [this.accountIndexOf(userId)],
        [this.options.keyPrefix, userId, TOMBSTONE_MIN_LIFETIME_MS, options.exceptSid ?? ''],
      ),
    );
    return Number(reply);
  }
}

export function createRedisSessionStore(redis: RedisCommands, options: RedisStoreOptions): RedisSessionStore {
  return new RedisSessionStore(redis, options);
}
