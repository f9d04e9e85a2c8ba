import type { AuditEvent, AuditEventType, AuditLog } from '../audit/log.js';
import { maskAddress } from '../auth/session-labels.js';
import type { Clock } from '../clock.js';
import { NOTICE_TYPES, type NoticeType } from '../notices/notices.js';

/**
 * "Your security log" on /account/security (issue 11): the account's own events of the last 30
 * days, newest first, in words a person reads. Only events recorded under the account's id
 * (audit.forUser), never another account's, and no detail that names someone else.
 */
export const SECURITY_LOG_DAYS = 30;
/** The page shows at most this many; a month of ordinary use is far fewer. */
export const SECURITY_LOG_LIMIT = 100;
const DAY_MS = 24 * 60 * 60_000;

/** How each event reads; a type not listed reads as GENERIC_LABEL (a new type never breaks the page). */
const LABELS: Partial<Record<AuditEventType, string>> = {
  account_created: 'Account created',
  phone_proven: 'Phone number confirmed',
  phone_corrected_at_signup: 'Phone number corrected while signing up',
  login_password_failed: 'Wrong password at login',
  login_throttled: 'Login attempts slowed down after too many failures',
  login_refused_disabled: 'Login refused: the account is disabled',
  code_sent: 'Code sent',
  code_send_failed: 'A code could not be sent',
  code_send_refused: 'A code was not sent (a sending limit)',
  code_send_flagged: 'A code was sent past a sending limit',
  code_failed: 'Wrong code entered',
  code_lockout: 'Code entry paused after too many wrong codes',
  code_entry_suspended: 'Code entry suspended after too many wrong codes',
  code_entry_unlocked: 'Code entry unlocked by an admin',
  login_succeeded: 'Logged in',
  logout: 'Logged out',
  admin_verified: 'Secure area opened',
  admin_denied: 'Secure area refused',
  admin_granted: 'Made an admin',
  admin_revoked: 'No longer an admin',
  registration_refused: 'A phone number was refused by the site’s rules',
  registration_flagged: 'A phone number was let through past the site’s rules',
  email_verification_sent: 'Link sent to confirm an email address',
  email_verified: 'Email address confirmed',
  email_removed: 'Email address removed',
  settings_verified: 'Confirmed it is you for a settings change',
  password_changed: 'Password changed',
  password_change_failed: 'Wrong current password when changing it',
  password_reset_requested: 'Password reset requested',
  password_reset_verified: 'Password reset code entered',
  password_reset: 'Password reset',
  phone_changed: 'Phone number changed',
  channel_changed: 'Default way to get codes changed',
  session_ended: 'Session ended',
  account_deletion_requested: 'Account deletion requested',
  account_unlocked: 'Unlocked by an admin',
  account_sessions_ended: 'Every session ended by an admin',
  account_disabled: 'Disabled by an admin',
  account_enabled: 'Enabled again by an admin',
  browser_remembered: 'Browser remembered: its logins skip the code',
  remembered_browser_forgotten: 'Remembered browser forgotten',
  remembered_browsers_revoked: 'Remembered browsers forgotten',
  two_factor_turned_off: 'Two-step login turned off',
  two_factor_turned_on: 'Two-step login turned on',
  account_factors_reset: 'Second factors reset by an admin',
  account_phone_replaced: 'Phone number replaced by an admin',
  recovery_codes_generated: 'New recovery codes made',
  notice_sent: 'Security notice emailed',
  notice_failed: 'A security notice could not be emailed',
  factor_renamed: 'Authenticator app or passkey renamed',
  factor_removed: 'Authenticator app or passkey removed',
  default_factor_changed: 'Default way to confirm it is you changed',
  passkey_refused: 'A passkey was refused',
  factor_added: 'Authenticator app or passkey added',
  api_key_created: 'API key created',
  api_key_revoked: 'API key revoked',
};

export const GENERIC_LABEL = 'Account activity';

/**
 * Events done to the account by someone else (an admin, the operator): their address is not the
 * person's, and their detail names the admin and the reason, which stay in the admin's log.
 */
const BY_SOMEONE_ELSE: ReadonlySet<AuditEventType> = new Set<AuditEventType>([
  'code_entry_unlocked',
  'admin_granted',
  'admin_revoked',
  'account_unlocked',
  'account_sessions_ended',
  'account_disabled',
  'account_enabled',
  'account_factors_reset',
  'account_phone_replaced',
]);

/** Events whose detail is for the person (masked numbers, a channel, a count): others keep theirs out. */
const DETAIL_SHOWN: ReadonlySet<AuditEventType> = new Set<AuditEventType>([
  'phone_proven',
  'phone_corrected_at_signup',
  'phone_changed',
  'channel_changed',
  'password_changed',
  'session_ended',
  // Which factor did it ("by authenticator app “Phone”"), and which was changed: the person's own words.
  'login_succeeded',
  'admin_verified',
  'settings_verified',
  'password_reset_verified',
  'factor_renamed',
  'factor_removed',
  'default_factor_changed',
  'browser_remembered',
  'remembered_browser_forgotten',
  'remembered_browsers_revoked',
  'factor_added',
  // The admin's own keys, by name and hint.
  'api_key_created',
  'api_key_revoked',
]);

const NOTICE_SUBJECTS: Record<NoticeType, string> = {
  password_changed: 'password changed',
  password_reset: 'password reset',
  phone_changed: 'phone number changed',
  email_changed: 'email address changed',
  deletion_requested: 'deletion requested',
  code_entry_paused: 'code entry paused',
  code_entry_suspended: 'code entry suspended',
  reset_app_codes_paused: 'app codes paused for password resets',
  recovery_codes_generated: 'new recovery codes',
  recovery_code_used: 'recovery code used',
  factor_removed: 'a way to confirm it is you removed',
  two_factor_turned_off: 'two-step login turned off',
  two_factor_turned_on: 'two-step login turned on',
  second_factors_reset: 'second factors reset',
  phone_replaced: 'phone number replaced by an admin',
  factor_added: 'a way to confirm it is you added',
};

export interface SecurityLogEntry {
  at: Date;
  label: string;
  /** The masked address the request came from, or "—" when it was not the person's. */
  address: string;
  detail: string | null;
}

export function labelOf(type: string): string {
  return LABELS[type as AuditEventType] ?? GENERIC_LABEL;
}

export function describeEvent(event: AuditEvent): SecurityLogEntry {
  const bySomeoneElse = BY_SOMEONE_ELSE.has(event.type);
  let detail: string | null = null;
  if (DETAIL_SHOWN.has(event.type)) detail = event.detail;
  else if (event.type === 'notice_sent' || event.type === 'notice_failed') {
    const notice = NOTICE_TYPES.find((type) => type === event.detail);
    detail = notice ? NOTICE_SUBJECTS[notice] : null;
  }
  return {
    at: event.at,
    label: labelOf(event.type),
    address: bySomeoneElse || event.ip === null ? '—' : maskAddress(event.ip),
    detail,
  };
}

export interface SecurityLog {
  forUser(userId: number): Promise<SecurityLogEntry[]>;
}

export function createSecurityLog(deps: { audit: AuditLog; clock: Clock }): SecurityLog {
  return {
    async forUser(userId) {
      const since = new Date(deps.clock.now().getTime() - SECURITY_LOG_DAYS * DAY_MS);
      const events = await deps.audit.forUser(userId, since, SECURITY_LOG_LIMIT);
      return events.map(describeEvent);
    },
  };
}
