import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { User, UserStore } from '../users/store.js';
import { usernameKeyOf } from '../users/username.js';
import type { AdminSeedLedger } from './seed-ledger.js';

/**
 * Who may enter the secure area. The role is a flag on an account, changed only by the operator:
 * the `npm run admin` command, or ADMIN_USERNAMES at start for accounts that already exist.
 * Registration never grants it, so nobody who can merely reach the site can claim it.
 */

export const GRANT_COMMAND = 'npm run admin -- grant';

export interface AdminRoleDeps {
  users: UserStore;
  audit: AuditLog;
}

export type RoleChange =
  /** `changed` is false when the account already had that role (nothing written, nothing audited). */
  { ok: true; user: User; changed: boolean } | { ok: false; reason: 'no_such_account' };

/** Gives or takes away the admin role, and records who did it (`detail`) in the audit log. */
export async function setAdminRole(
  deps: AdminRoleDeps,
  username: string,
  isAdmin: boolean,
  detail: string,
): Promise<RoleChange> {
  const user = await deps.users.findByUsername(username);
  if (!user) return { ok: false, reason: 'no_such_account' };
  if (user.isAdmin === isAdmin) return { ok: true, user, changed: false };
  // By the account just read, not the name again: the one checked is the one changed.
  if (!(await deps.users.setAdmin(user.username, isAdmin, user.id))) {
    return { ok: false, reason: 'no_such_account' };
  }
  await deps.audit.record({
    type: isAdmin ? 'admin_granted' : 'admin_revoked',
    userId: user.id,
    username: user.username,
    detail,
  });
  return { ok: true, user: { ...user, isAdmin }, changed: true };
}

export const SEEDED_FROM_CONFIG = 'ADMIN_USERNAMES at start';

/**
 * Makes the accounts named in ADMIN_USERNAMES admins, at start. Only accounts that existed when
 * the name was first listed: a listed name nobody had registered is a warning, never a
 * reservation, since whoever registered it next would otherwise be promoted at the following
 * restart. The ledger remembers, across restarts, the newest account id when each name was first
 * listed: only accounts older than that (ids never step back, unlike clocks) are seeded.
 */
export async function seedAdminsFromConfig(
  deps: AdminRoleDeps & {
    adminUsernames: readonly string[];
    ledger: AdminSeedLedger;
    clock: Clock;
    logger: Logger;
  },
): Promise<{ granted: string[]; missing: string[]; refused: string[] }> {
  const granted: string[] = [];
  const missing: string[] = [];
  const refused: string[] = [];
  for (const name of deps.adminUsernames) {
    const firstListing = await deps.ledger.firstListing(usernameKeyOf(name), deps.clock.now());
    const account = await deps.users.findByUsername(name);
    if (!account) {
      missing.push(name);
      deps.logger.warn(
        `ADMIN_USERNAMES names "${name}", but no account has that name, so no one was made an admin for it. ` +
          `Once its owner has registered it, run: ${GRANT_COMMAND} ${name}`,
      );
      continue;
    }
    if (!account.isAdmin && account.id > firstListing.lastUserIdThen) {
      refused.push(account.username);
      deps.logger.warn(
        `ADMIN_USERNAMES names "${name}", but that account was registered after the name was first listed, ` +
          `so anyone could have taken it: it was not made an admin. If it is yours, run: ${GRANT_COMMAND} ${name}`,
      );
      continue;
    }
    const change = await setAdminRole(deps, name, true, SEEDED_FROM_CONFIG);
    if (change.ok && change.changed) {
      granted.push(change.user.username);
      // Loud on purpose: an account registered before this list existed could be a squatter of
      // the name (before roles lived in the database, registering a listed name made an admin).
      deps.logger.warn(
        {
          username: change.user.username,
          registeredAt: change.user.createdAt.toISOString(),
          lastLoginAt: change.user.lastLoginAt?.toISOString() ?? null,
        },
        `"${change.user.username}" was made an admin from ADMIN_USERNAMES: check it is the account you meant ` +
          '(npm run admin -- list; revoke with npm run admin -- revoke USERNAME)',
      );
    }
  }
  if ((await deps.users.listAdmins()).length === 0) {
    deps.logger.warn(
      `No account can enter the secure area yet: register one, then run: ${GRANT_COMMAND} USERNAME`,
    );
  }
  return { granted, missing, refused };
}
