import type { Clock } from '../clock.js';
import type { Db } from '../db/open.js';
import type { Channel } from '../mfa/provider.js';

export interface User {
  id: number;
  username: string;
  passwordHash: string;
  phone: string;
  preferredChannel: Channel;
  createdAt: Date;
  lastLoginAt: Date | null;
  /** May enter the secure area (after its own code). Set only by the operator, never by registering. */
  isAdmin: boolean;
}

export interface NewUser {
  username: string;
  passwordHash: string;
  phone: string;
  preferredChannel: Channel;
}

export interface UserStore {
  /** Returns null when the username is taken (compared without case). */
  create(user: NewUser): User | null;
  findById(id: number): User | null;
  findByUsername(username: string): User | null;
  setPreferredChannel(id: number, channel: Channel): void;
  /** Records a completed login and returns the one before it (null on the first). */
  recordLogin(id: number): Date | null;
  list(): User[];
  /**
   * Gives or takes away admin rights; the name is matched as login matches it (without case).
   * Returns false when no account has that name.
   */
  setAdmin(username: string, isAdmin: boolean): boolean;
  listAdmins(): User[];
  /** How many accounts have this E.164 number (the toll-fraud guard caps it). */
  countByPhone(phone: string): number;
}

interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  phone_e164: string;
  preferred_channel: Channel;
  created_at: number;
  last_login_at: number | null;
  is_admin: number;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    phone: row.phone_e164,
    preferredChannel: row.preferred_channel,
    createdAt: new Date(row.created_at),
    lastLoginAt: row.last_login_at === null ? null : new Date(row.last_login_at),
    isAdmin: row.is_admin === 1,
  };
}

export function createSqliteUserStore(db: Db, clock: Clock): UserStore {
  const insert = db.prepare(
    `INSERT INTO users (username, password_hash, phone_e164, preferred_channel, created_at)
     VALUES (@username, @passwordHash, @phone, @preferredChannel, @createdAt)
     ON CONFLICT (username) DO NOTHING`,
  );
  const byId = db.prepare('SELECT * FROM users WHERE id = ?');
  const byUsername = db.prepare('SELECT * FROM users WHERE username = ?');
  const updateChannel = db.prepare('UPDATE users SET preferred_channel = ? WHERE id = ?');
  const updateLastLogin = db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?');
  const all = db.prepare('SELECT * FROM users ORDER BY created_at DESC, id DESC LIMIT 500');
  const updateAdmin = db.prepare('UPDATE users SET is_admin = ? WHERE username = ?');
  const admins = db.prepare('SELECT * FROM users WHERE is_admin = 1 ORDER BY username');
  const withPhone = db.prepare('SELECT COUNT(*) AS count FROM users WHERE phone_e164 = ?');

  const findById = (id: number) => {
    const row = byId.get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  };

  return {
    create(user) {
      const result = insert.run({ ...user, createdAt: clock.now().getTime() });
      return result.changes === 0 ? null : findById(Number(result.lastInsertRowid));
    },
    findById,
    findByUsername(username) {
      const row = byUsername.get(username) as UserRow | undefined;
      return row ? toUser(row) : null;
    },
    setPreferredChannel(id, channel) {
      updateChannel.run(channel, id);
    },
    recordLogin: db.transaction((id: number) => {
      const previous = findById(id)?.lastLoginAt ?? null;
      updateLastLogin.run(clock.now().getTime(), id);
      return previous;
    }),
    list() {
      return (all.all() as UserRow[]).map(toUser);
    },
    setAdmin(username, isAdmin) {
      return updateAdmin.run(isAdmin ? 1 : 0, username).changes > 0;
    },
    listAdmins() {
      return (admins.all() as UserRow[]).map(toUser);
    },
    countByPhone(phone) {
      return (withPhone.get(phone) as { count: number }).count;
    },
  };
}
