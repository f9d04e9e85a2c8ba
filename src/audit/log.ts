export const AUDIT_EVENT_TYPES = [
  'account_created',
  // Sign-up proves the number (issue 11): a code to it entered, or the number corrected first.
  'phone_proven',
  'phone_corrected_at_signup',
  'login_password_failed',
  'login_throttled',
  'code_sent',
  'code_send_failed',
  'code_failed',
  'code_lockout',
  'login_succeeded',
  'admin_verified',
  'admin_denied',
  'admin_granted',
  'admin_revoked',
  'logout',
  // The toll-fraud guard (issue 8): refused, or in record mode flagged, sends and registrations.
  'code_send_refused',
  'code_send_flagged',
  'registration_refused',
  'registration_flagged',
  'sending_paused',
  'send_budget_spent',
  'code_entry_suspended',
  'code_entry_unlocked',
  // The account's life (issue 11).
  'email_verification_sent',
  'email_verified',
  'email_removed',
  'settings_verified',
  'password_changed',
  // A wrong current password on the change form of /account/security.
  'password_change_failed',
  'password_reset_requested',
  'password_reset_verified',
  'password_reset',
  'phone_changed',
  'channel_changed',
  'session_ended',
  'account_deletion_requested',
  'account_deleted',
  'notice_sent',
  'notice_failed',
  // An admin helping an account from the secure area (issue 11): the target is the event's user,
  // the detail names the admin and the reason.
  'account_unlocked',
  'account_sessions_ended',
  'account_disabled',
  'account_enabled',
  // The right password for a disabled account (the person is told only "invalid").
  'login_refused_disabled',
  // Second factors (issue 12); recovery_codes_generated: a new set (the old set void).
  'recovery_codes_generated',
  'factor_renamed',
  'factor_removed',
  'default_factor_changed',
  'passkey_refused',
  // "Remember this browser" (issue 12): one remembered, one forgotten on the security page, every
  // one revoked at once (the detail says how many and why).
  'browser_remembered',
  'remembered_browser_forgotten',
  'remembered_browsers_revoked',
  // MFA_POLICY=optional: the person turned the second step of the login off or on again.
  'two_factor_turned_off',
  'two_factor_turned_on',
  // An admin removed the account's apps, passkeys, recovery codes and remembered browsers.
  'account_factors_reset',
  // An admin replaced the account's lost number with a new one, to be proven at its next login;
  // the detail has both numbers masked.
  'account_phone_replaced',
  // A factor added: the detail names the kind (and, for an app, its label).
  'factor_added',
  // Keys of the verification API (issue 13), made or revoked by an admin (the event's user); the
  // detail names the key by its name and hint, never the key.
  'api_key_created',
  'api_key_revoked',
  // The verification API's codes (issue 13): each names the key (`api:<key name>`) and, in the
  // detail, the label, the masked number and the channel; api_code_checked also the outcome. Never
  // the code.
  'api_code_sent',
  'api_code_checked',
  'api_verification_canceled',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditEvent {
  id: number;
  at: Date;
  type: AuditEventType;
  userId: number | null;
  username: string | null;
  ip: string | null;
  detail: string | null;
}

export interface AuditEventInput {
  type: AuditEventType;
  userId?: number | null;
  username?: string | null;
  ip?: string | null;
  /** Short, human text. Never a code, a password or a full phone number. */
  detail?: string | null;
}

/** What happened to accounts, newest first on the admin page. Backends: src/stores/sql/audit-log.ts. */
export interface AuditLog {
  record(event: AuditEventInput): Promise<void>;
  /** The newest `limit` events (50 unless said), newest first. */
  recent(limit?: number): Promise<AuditEvent[]>;
  /** One account's events since `since`, newest first, at most `limit` (its own security log). */
  forUser(userId: number, since: Date, limit?: number): Promise<AuditEvent[]>;
  /** Deletes up to `batchSize` of the oldest events from before `cutoff`; returns how many went. */
  deleteOlderThan(cutoff: Date, batchSize: number): Promise<number>;
  /**
   * The account was deleted: its events stay (what happened, when, from which address), under a
   * pseudonym. Every event of `userId`, and every event without an account that carries `username`
   * however it was typed (a failed login), is given `pseudonym` as its name and no account id (SQLite
   * may number a later account with the same id: its security log must never show these); a detail
   * that shows a phone number, even masked, is dropped. Returns how many events were rewritten.
   */
  pseudonymizeAccount(account: { userId: number; username: string }, pseudonym: string): Promise<number>;
}
