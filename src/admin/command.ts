import type { CodeEntryCeiling } from '../mfa/code-entry-ceiling.js';
import { usernameKeyOf } from '../users/username.js';
import { GRANT_COMMAND, setAdminRole, type AdminRoleDeps } from './roles.js';

/**
 * `npm run admin -- grant|revoke USERNAME`, `npm run admin -- list`, `unlock USERNAME` and
 * `enable USERNAME`: the operator's way to make and unmake admins, to lift a suspension of code
 * entry, and to enable an account an admin disabled (the way back when no admin can), on the
 * database the site uses. Plain in, plain out, so tests run it
 * directly; src/admin/cli.ts only wires it to the process.
 */

export const USAGE =
  'Usage: npm run admin -- grant USERNAME | revoke USERNAME | list | unlock USERNAME | enable USERNAME';

/** Exit codes: 0 done (or nothing to do), 1 no such account, 2 the command was not understood. */
export interface AdminCommandResult {
  output: string;
  exitCode: 0 | 1 | 2;
}

export interface AdminCommandDeps extends AdminRoleDeps {
  /** ADMIN_USERNAMES: a revoked name still listed there is granted again at the next start. */
  adminUsernames: readonly string[];
  /** Named in "no such account", in case the command was run against another database. */
  databaseName: string;
  /** 100 wrong codes in a row suspend an account's code entry until `unlock` lifts it. */
  ceiling: CodeEntryCeiling;
}

const FROM_OPERATOR = 'by the operator command (npm run admin)';

const usageError = (problem: string): AdminCommandResult => ({
  output: `${problem}\n${USAGE}`,
  exitCode: 2,
});

const noSuchAccount = (username: string, deps: AdminCommandDeps): AdminCommandResult => ({
  output:
    `No account is named "${username.trim()}" in ${deps.databaseName}. ` +
    'Register it on the site first, then run this again.',
  exitCode: 1,
});

/** Lifts the suspension of code entry that 100 wrong codes in a row put on an account. */
async function unlockCodeEntry(username: string, deps: AdminCommandDeps): Promise<AdminCommandResult> {
  const user = await deps.users.findByUsername(username);
  if (!user) return noSuchAccount(username, deps);
  if (!(await deps.ceiling.unlock(user.id))) {
    return { output: `${user.username}'s code entry is not suspended; nothing changed.`, exitCode: 0 };
  }
  await deps.audit.record({
    type: 'code_entry_unlocked',
    userId: user.id,
    username: user.username,
    detail: FROM_OPERATOR,
  });
  return {
    output: `${user.username} can receive and enter codes again.`,
    exitCode: 0,
  };
}

/** Enables an account an admin disabled in the secure area (say, one since made an admin). */
async function enableAccount(username: string, deps: AdminCommandDeps): Promise<AdminCommandResult> {
  const user = await deps.users.findByUsername(username);
  if (!user) return noSuchAccount(username, deps);
  if (!(await deps.users.enable(user.id))) {
    return { output: `${user.username} is not disabled; nothing changed.`, exitCode: 0 };
  }
  await deps.audit.record({
    type: 'account_enabled',
    userId: user.id,
    username: user.username,
    detail: FROM_OPERATOR,
  });
  return { output: `${user.username} is enabled: it can log in again.`, exitCode: 0 };
}

export async function runAdminCommand(
  args: readonly string[],
  deps: AdminCommandDeps,
): Promise<AdminCommandResult> {
  const [action, username, ...extra] = args;
  if (action === 'list') {
    if (args.length > 1) return usageError('"list" takes no username.');
    const admins = (await deps.users.listAdmins()).map((user) => user.username);
    return {
      output:
        admins.length === 0
          ? `No account is an admin yet. Make one with: ${GRANT_COMMAND} USERNAME`
          : `Admins (${admins.length}): ${admins.join(', ')}`,
      exitCode: 0,
    };
  }
  if (action !== 'grant' && action !== 'revoke' && action !== 'unlock' && action !== 'enable') {
    return usageError(action === undefined ? 'Say what to do.' : `Unknown command "${action}".`);
  }
  if (username === undefined || username.trim() === '') return usageError(`"${action}" needs a username.`);
  if (extra.length > 0) return usageError(`"${action}" takes one username at a time.`);

  if (action === 'unlock') return unlockCodeEntry(username, deps);
  if (action === 'enable') return enableAccount(username, deps);

  const isGrant = action === 'grant';
  const change = await setAdminRole(deps, username, isGrant, FROM_OPERATOR);
  if (!change.ok) return noSuchAccount(username, deps);
  const name = change.user.username;
  if (!change.changed) {
    return {
      output: isGrant
        ? `${name} is already an admin; nothing changed.`
        : `${name} is not an admin; nothing changed.`,
      exitCode: 0,
    };
  }
  if (isGrant) {
    return {
      output: `${name} is now an admin: the secure area opens for them from their next page load.`,
      exitCode: 0,
    };
  }
  const stillListed = deps.adminUsernames.some((listed) => usernameKeyOf(listed) === usernameKeyOf(name));
  return {
    output:
      `${name} is no longer an admin.` +
      (stillListed
        ? ` ADMIN_USERNAMES still names ${name}, so the next start makes them an admin again: remove it there too.`
        : ''),
    exitCode: 0,
  };
}
