import { sql, type ExpressionBuilder, type Kysely, type Selectable } from 'kysely';
import type { Clock } from '../../clock.js';
import { emailKeyOf } from '../../email/address.js';
import type { DefaultFactor, DeleteOutcome, User, UserStore } from '../../users/store.js';
import { usernameKeyOf } from '../../users/username.js';
import type { SqlDatabase } from './database.js';
import { isUniqueViolation } from './errors.js';
import { prepareQuery } from './prepared-query.js';
import type { Schema, UsersTable } from './schema.js';

const LIST_LIMIT = 500;

const dateOrNull = (at: number | null | undefined) => (at == null ? null : new Date(at));

function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    phone: row.phone_e164,
    preferredChannel: row.preferred_channel,
    createdAt: new Date(row.created_at),
    lastLoginAt: row.last_login_at === null ? null : new Date(row.last_login_at),
    isAdmin: row.is_admin === 1,
    phoneVerifiedAt: row.phone_verified_at === null ? null : new Date(row.phone_verified_at),
    email: row.email ?? null,
    emailVerifiedAt: row.email_verified_at == null ? null : new Date(row.email_verified_at),
    pendingEmail: row.pending_email ?? null,
    disabledAt: row.disabled_at === null ? null : new Date(row.disabled_at),
    defaultFactor: (row.default_factor ?? null) as DefaultFactor | null,
    twoFactorOffAt: dateOrNull(row.two_factor_off_at),
    recoveryCodesOfferedAt: dateOrNull(row.recovery_codes_offered_at),
    phoneLastUsedAt: dateOrNull(row.phone_last_used_at),
  };
}

/**
 * SQLite numbers a new row one above the highest id in the table, so the id of a deleted newest
 * account would be given again. Ids here never step back (the admin seed ledger relies on it), so
 * on SQLite a new account is numbered above the highest deleted id as well (user_id_floor, raised
 * by a trigger on every deletion; 014). One statement: SQLite's single writer makes the read and
 * the insert one step.
 */
const NEXT_SQLITE_USER_ID = sql<number>`(SELECT max(
  coalesce((SELECT max(id) FROM users), 0),
  coalesce((SELECT highest_deleted_id FROM user_id_floor WHERE singleton = 1), 0)
) + 1)`;

export function createSqlUserStore({ db, dialect }: SqlDatabase, clock: Clock): UserStore {
  // Every signed-in page reads its account: built once (prepared-query.ts).
  const selectById = prepareQuery(db, ({ id }: { id: number }) =>
    db.selectFrom('users').selectAll().where('id', '=', id),
  );
  const findById = async (id: number) => {
    const row = await selectById.first({ id });
    return row ? toUser(row) : null;
  };

  return {
    async create(user) {
      // Two registrations of one name at the same moment: the unique index on username_key lets
      // exactly one insert through; the other inserts nothing and hears "taken".
      const row = await db
        .insertInto('users')
        .values({
          ...(dialect === 'sqlite' ? { id: NEXT_SQLITE_USER_ID } : {}),
          username: user.username,
          username_key: usernameKeyOf(user.username),
          password_hash: user.passwordHash,
          phone_e164: user.phone,
          preferred_channel: user.preferredChannel,
          created_at: clock.now().getTime(),
          // Unproven until its sign-up code (written out: the column's default is for old code).
          phone_verified_at: null,
        })
        // No target: databases made before 007 also have a unique username (COLLATE NOCASE in SQLite).
        .onConflict((conflict) => conflict.doNothing())
        .returningAll()
        .executeTakeFirst();
      return row ? toUser(row) : null;
    },
    findById,
    async findByUsername(username) {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('username_key', '=', usernameKeyOf(username))
        .executeTakeFirst();
      return row ? toUser(row) : null;
    },
    async setDefaultFactor(id, factor) {
      await db.updateTable('users').set({ default_factor: factor }).where('id', '=', id).execute();
    },
    async setTwoFactorOff(id, off) {
      await db
        .updateTable('users')
        .set({ two_factor_off_at: off ? clock.now().getTime() : null })
        .where('id', '=', id)
        .execute();
    },
    async markRecoveryCodesOffered(id) {
      const result = await db
        .updateTable('users')
        .set({ recovery_codes_offered_at: clock.now().getTime() })
        .where('id', '=', id)
        .where('recovery_codes_offered_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async recordPhoneUse(id) {
      await db
        .updateTable('users')
        .set({ phone_last_used_at: clock.now().getTime() })
        .where('id', '=', id)
        .execute();
    },
    async setPreferredChannel(id, channel) {
      await db.updateTable('users').set({ preferred_channel: channel }).where('id', '=', id).execute();
    },
    async recordLogin(id) {
      // Two statements: two logins of one account finishing in the same moment may both be told
      // the same previous login, which is only a line of text on the account page.
      const previous = await db
        .selectFrom('users')
        .select('last_login_at')
        .where('id', '=', id)
        .executeTakeFirst();
      await db
        .updateTable('users')
        .set({ last_login_at: clock.now().getTime() })
        .where('id', '=', id)
        .execute();
      return previous?.last_login_at == null ? null : new Date(previous.last_login_at);
    },
    async list() {
      const rows = await db
        .selectFrom('users')
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(LIST_LIMIT)
        .execute();
      return rows.map(toUser);
    },
    async setAdmin(username, isAdmin, onlyId) {
      let update = db
        .updateTable('users')
        .set({ is_admin: isAdmin ? 1 : 0 })
        .where('username_key', '=', usernameKeyOf(username));
      if (onlyId !== undefined) update = update.where('id', '=', onlyId);
      const result = await update.executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
    async listAdmins() {
      const rows = await db
        .selectFrom('users')
        .selectAll()
        .where('is_admin', '=', 1)
        .orderBy('username_key')
        .orderBy('id')
        .execute();
      return rows.map(toUser);
    },
    async disable(id) {
      // The role is checked on the row itself, in the same statement: an account made an admin
      // while this ran is not disabled.
      const result = await db
        .updateTable('users')
        .set({ disabled_at: clock.now().getTime() })
        .where('id', '=', id)
        .where('disabled_at', 'is', null)
        .where('is_admin', '=', 0)
        .executeTakeFirst();
      if (result.numUpdatedRows === 1n) return 'disabled';
      const row = await findById(id);
      if (!row) return 'no_such_account';
      return row.disabledAt === null && row.isAdmin ? 'is_admin' : 'already_disabled';
    },
    async enable(id) {
      const result = await db
        .updateTable('users')
        .set({ disabled_at: null })
        .where('id', '=', id)
        .where('disabled_at', 'is not', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
    async countProvenByPhone(phone) {
      const row = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('phone_e164', '=', phone)
        .where('phone_verified_at', 'is not', null)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
    async markPhoneProven(id, phone) {
      // Conditional on the number: a code to the old number must not prove a corrected one.
      const result = await db
        .updateTable('users')
        .set({ phone_verified_at: clock.now().getTime() })
        .where('id', '=', id)
        .where('phone_e164', '=', phone)
        .where('phone_verified_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
    async replaceUnprovenPhone(id, phone) {
      const result = await db
        .updateTable('users')
        .set({ phone_e164: phone })
        .where('id', '=', id)
        .where('phone_verified_at', 'is', null)
        // A sign-up's number only: one an admin put in place is the only one that may be proven.
        .where('last_login_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
    async replacePhoneToProve(id, from, to) {
      const result = await db
        .updateTable('users')
        // A login without the second step (MFA_POLICY=optional) ends too: whoever has the lost
        // phone may have the password saved on it.
        .set({ phone_e164: to, phone_verified_at: null, two_factor_off_at: null })
        .where('id', '=', id)
        .where('phone_e164', '=', from)
        // Housekeeping deletes unproven accounts that never logged in: this one never becomes one.
        .where('last_login_at', 'is not', null)
        // Never an admin's, in the same write (phone-replacement.ts refuses it first, with its reason).
        .where('is_admin', '=', 0)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
    async deleteUnprovenMadeBefore(madeBefore, batchSize) {
      // The newest account goes too: its id is never given to a later sign-up (the id floor of
      // migration 014, raised by every deletion), so nothing still keyed by it (a session waiting
      // for its code, the admin seed ledger's "ids never step back") can pass to a stranger. Their
      // challenges, proven-number rows and the like go with them (ON DELETE CASCADE).
      const unproven = (eb: ExpressionBuilder<Schema, 'users'>) =>
        eb.and([
          eb('phone_verified_at', 'is', null),
          eb('last_login_at', 'is', null),
          eb('created_at', '<', madeBefore.getTime()),
        ]);
      const result = await db
        .deleteFrom('users')
        .where('id', 'in', (eb) =>
          eb.selectFrom('users').select('id').where(unproven).orderBy('created_at').limit(batchSize),
        )
        // Again on the row itself: on PostgreSQL a row proven while this waited for its lock is
        // checked anew here (the IN list alone would delete it).
        .where(unproven)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async setPasswordHash(id, passwordHash) {
      await db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', id).execute();
    },
    async changeProvenPhone(id, from, to) {
      const result = await db
        .updateTable('users')
        .set({ phone_e164: to, phone_verified_at: clock.now().getTime() })
        .where('id', '=', id)
        .where('phone_e164', '=', from)
        .where('phone_verified_at', 'is not', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
    async setPendingEmail(id, address) {
      await db.updateTable('users').set({ pending_email: address }).where('id', '=', id).execute();
    },
    async confirmEmail(id, address) {
      try {
        const result = await db
          .updateTable('users')
          .set({
            email: address,
            email_key: emailKeyOf(address),
            email_verified_at: clock.now().getTime(),
            pending_email: null,
          })
          .where('id', '=', id)
          .where('pending_email', '=', address)
          .executeTakeFirst();
        return result.numUpdatedRows === 1n ? 'confirmed' : 'stale';
      } catch (error) {
        // The unique index on email_key decides between two accounts verifying one address.
        if (isUniqueViolation(error)) return 'taken';
        throw error;
      }
    },
    async removeEmail(id) {
      await db
        .updateTable('users')
        .set({ email: null, email_key: null, email_verified_at: null, pending_email: null })
        .where('id', '=', id)
        .execute();
    },
    async findByVerifiedEmail(address) {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('email_key', '=', emailKeyOf(address))
        .executeTakeFirst();
      return row ? toUser(row) : null;
    },
    async deleteAccount(id): Promise<DeleteOutcome> {
      const remove = async (q: Kysely<Schema>): Promise<DeleteOutcome> => {
        // On PostgreSQL the admins' rows are locked first: of two admins deleting themselves at
        // once, the second waits, then counts again without the first (READ COMMITTED re-reads
        // locked rows) and is refused. On SQLite the conditional delete below is one statement,
        // and SQLite runs one writing statement at a time.
        if (dialect === 'postgres') {
          await q
            .selectFrom('users')
            .select('id')
            .where('is_admin', '=', 1)
            .orderBy('id')
            .forUpdate()
            .execute();
        }
        const account = await q
          .selectFrom('users')
          .select('phone_e164')
          .where('id', '=', id)
          .executeTakeFirst();
        if (!account) return 'no_such_account';
        // ON DELETE CASCADE takes its challenges, links, proven-number rows (verified_number_accounts)
        // and code-entry counter; its audit events lose their user_id (the caller rewrites them).
        // On SQLite a trigger raises user_id_floor in the same statement (014).
        const deleted = await q
          .deleteFrom('users')
          .where('id', '=', id)
          .where((eb) =>
            eb.or([
              eb('is_admin', '=', 0),
              eb(
                eb
                  .selectFrom('users as admins')
                  .select((count) => count.fn.countAll<number>().as('admins'))
                  .where('admins.is_admin', '=', 1),
                '>',
                1,
              ),
            ]),
          )
          .executeTakeFirst();
        if (deleted.numDeletedRows === 0n) {
          const still = await q.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst();
          return still ? 'last_admin' : 'no_such_account';
        }
        // What the site keeps about the number itself (codes it issued, "this number completed a
        // code" for the toll-fraud guard) goes too, unless another account still has that number.
        // On SQLite these are statements of their own: a crash right here leaves codes that
        // expire within minutes, and the number's fact.
        const shared = await q
          .selectFrom('users')
          .select('id')
          .where('phone_e164', '=', account.phone_e164)
          .limit(1)
          .executeTakeFirst();
        if (!shared) {
          await q.deleteFrom('issued_codes').where('phone_e164', '=', account.phone_e164).execute();
          await q.deleteFrom('verified_numbers').where('phone_e164', '=', account.phone_e164).execute();
        }
        return 'deleted';
      };
      return dialect === 'postgres' ? db.transaction().execute(remove) : remove(db);
    },
  };
}
