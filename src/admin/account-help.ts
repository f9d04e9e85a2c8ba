import type { Logger } from '../logger.js';
import type { AuditEventType, AuditLog } from '../audit/log.js';
import type { AccountSessions } from '../auth/account-sessions.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { RememberedBrowsers } from '../auth/remembered-browsers.js';
import type { SecondFactorReset } from '../factors/second-factor-reset.js';
import type { MfaService } from '../mfa/service.js';
import type { Notices } from '../notices/notices.js';
import type { User, UserStore } from '../users/store.js';

/**
 * What an admin can do for an account from the secure area (issue 11): unlock it, end all its
 * sessions, disable or enable it, reset its second factors (issue 12). Each is done on behalf of an admin who entered an admin code in
 * the last few minutes (the router checks that), with a reason, and is audited with who did it,
 * to whom, and why. Plain values in and out: no req/res here.
 */
/** The account page's buttons; the reset of second factors has a page of its own, with a confirmation. */
export const ACCOUNT_PAGE_ACTIONS = ['unlock', 'end_sessions', 'disable', 'enable'] as const;
export const ACCOUNT_ACTIONS = [...ACCOUNT_PAGE_ACTIONS, 'reset_factors'] as const;
export type AccountAction = (typeof ACCOUNT_ACTIONS)[number];

export interface AccountHelpRequest {
  action: AccountAction;
  /** The admin doing it. */
  actor: User;
  target: User;
  /** Trimmed, 1 to REASON_MAX_CHARS characters (the form's schema checks it). */
  reason: string;
  /** The admin's address, for the audit log. */
  ip?: string;
  /** The admin's own session: ending their own account's sessions keeps the one they are using. */
  actorSid: string;
}

export type AccountHelpOutcome =
  | { ok: true; message: string }
  /** Refused, with a sentence to show: the account page says it as the form's error. */
  | { ok: false; status: 403 | 409; message: string };

export const REASON_MAX_CHARS = 200;

/**
 * An admin never resets their own second factors: whoever holds an admin's session and phone could
 * otherwise strip the passkeys and apps the secure area asks for. Another admin does it, after
 * checking with them.
 */
export const OWN_FACTORS_RESET_REFUSAL =
  'You cannot reset your own second factors. Ask another admin to do it: they check with you first.';

const AUDIT_TYPES: Record<AccountAction, AuditEventType> = {
  unlock: 'account_unlocked',
  end_sessions: 'account_sessions_ended',
  disable: 'account_disabled',
  enable: 'account_enabled',
  reset_factors: 'account_factors_reset',
};

export interface AccountHelp {
  perform(request: AccountHelpRequest): Promise<AccountHelpOutcome>;
}

export function createAccountHelp(deps: {
  users: UserStore;
  accountSessions: AccountSessions;
  /** Ending an account's sessions (or disabling it) forgets its remembered browsers too. */
  rememberedBrowsers: Pick<RememberedBrowsers, 'revokeAll'>;
  secondFactorReset: SecondFactorReset;
  /** The person hears of a reset of their second factors. */
  notices: Notices;
  mfa: Pick<MfaService, 'unlockCodeEntry'>;
  throttle: Pick<LoginThrottle, 'forgiveAccount'>;
  audit: AuditLog;
  logger: Logger;
}): AccountHelp {
  const { users, accountSessions, rememberedBrowsers, mfa, throttle, audit, logger } = deps;

  const sessionsEnded = (count: number) => `${count} ${count === 1 ? 'session' : 'sessions'}`;
  const browsersForgotten = (count: number) =>
    count === 0 ? '' : `, ${count} remembered ${count === 1 ? 'browser' : 'browsers'} forgotten`;
  const counted = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;

  async function act(request: AccountHelpRequest): Promise<AccountHelpOutcome & { note?: string }> {
    const { action, actor, target } = request;
    const isSelf = actor.id === target.id;
    switch (action) {
      case 'unlock': {
        const lifted = await mfa.unlockCodeEntry(target.id);
        await throttle.forgiveAccount(target.username);
        const what = [
          lifted.wasSuspended ? 'code entry suspension lifted' : null,
          lifted.wasPaused ? 'code entry pause ended' : null,
        ].filter((part) => part !== null);
        return {
          ok: true,
          message: `${target.username} can enter codes and log in again: its wrong-code and login counts are cleared.`,
          note: what.length > 0 ? what.join(', ') : 'counts cleared',
        };
      }
      case 'end_sessions': {
        // Their own account: the session the admin is using stays (the rest end).
        const count = await accountSessions.endAllForUser(
          target.id,
          isSelf ? { exceptSid: request.actorSid } : {},
        );
        // A remembered browser would let whoever holds it back in with the password alone.
        const forgotten = await rememberedBrowsers.revokeAll(
          target.id,
          `sessions ended by ${actor.username}`,
        );
        return {
          ok: true,
          message: isSelf
            ? `Your other sessions have ended (${sessionsEnded(count)}${browsersForgotten(forgotten)}); this one stays.`
            : `${target.username}’s sessions have ended (${sessionsEnded(count)}${browsersForgotten(forgotten)}).`,
          note: `${sessionsEnded(count)} ended${browsersForgotten(forgotten)}`,
        };
      }
      case 'disable': {
        if (isSelf) return { ok: false, status: 403, message: 'You cannot disable your own account.' };
        const outcome = await users.disable(target.id);
        if (outcome === 'is_admin') {
          return {
            ok: false,
            status: 403,
            message: `${target.username} is an admin, and an admin’s account cannot be disabled here. The operator takes the role away first (npm run admin -- revoke ${target.username}).`,
          };
        }
        if (outcome !== 'disabled') {
          return { ok: false, status: 409, message: `${target.username} is already disabled.` };
        }
        // After the flag: a session saved meanwhile is one the signed-in loader refuses anyway.
        // The disable is done whatever happens next, so it is audited whatever happens next: a
        // session store that fails here leaves a note and a retry, not an unrecorded disable.
        // Its remembered browsers go too, so that enabling it again later does not bring them back
        // ("End all sessions" forgets them as well, so the retry below covers both).
        let count: number;
        let forgotten: number;
        try {
          count = await accountSessions.endAllForUser(target.id);
          forgotten = await rememberedBrowsers.revokeAll(target.id, `account disabled by ${actor.username}`);
        } catch (error) {
          logger.error(
            { err: error, userId: target.id },
            'disabled, but its sessions or remembered browsers could not be ended',
          );
          return {
            ok: true,
            message: `${target.username} is disabled: it cannot log in, and its pages refuse it. Its sessions could not be ended just now: use “End all sessions” in a moment.`,
            note: 'sessions not ended: a store failed',
          };
        }
        return {
          ok: true,
          message: `${target.username} is disabled: it cannot log in, and its sessions have ended (${sessionsEnded(count)}${browsersForgotten(forgotten)}).`,
          note: `${sessionsEnded(count)} ended${browsersForgotten(forgotten)}`,
        };
      }
      case 'enable': {
        if (!(await users.enable(target.id))) {
          return { ok: false, status: 409, message: `${target.username} is not disabled.` };
        }
        return { ok: true, message: `${target.username} is enabled: it can log in again.` };
      }
      case 'reset_factors': {
        if (isSelf) return { ok: false, status: 403, message: OWN_FACTORS_RESET_REFUSAL };
        // For a person who lost the app, the passkeys and the recovery codes: the phone stays.
        const removed = await deps.secondFactorReset.removeAllSecondFactors(target.id);
        await deps.notices.notify({ type: 'second_factors_reset', user: target, ip: request.ip });
        const what = [
          counted(removed.factors, 'app or passkey', 'apps and passkeys'),
          counted(removed.recoveryCodes, 'recovery code', 'recovery codes'),
          counted(removed.rememberedBrowsers, 'remembered browser', 'remembered browsers'),
        ].join(', ');
        return {
          ok: true,
          message: `${target.username}’s second factors are reset (${what} removed): its phone is its only second factor now.`,
          note: `${what} removed`,
        };
      }
    }
  }

  return {
    async perform(request) {
      const outcome = await act(request);
      if (!outcome.ok) return outcome;
      await audit.record({
        type: AUDIT_TYPES[request.action],
        userId: request.target.id,
        username: request.target.username,
        ip: request.ip,
        detail: `by ${request.actor.username}${outcome.note ? ` (${outcome.note})` : ''}: ${request.reason}`,
      });
      return { ok: true, message: outcome.message };
    },
  };
}
