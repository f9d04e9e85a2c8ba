import type { Generated } from 'kysely';
import type { SendingEvent } from '../../fraud/store.js';
import type { CloseReason } from '../../mfa/challenge-store.js';
import type { Channel, Scope } from '../../mfa/provider.js';
import type { ApiVerificationStatus } from '../../api/verification-store.js';

/**
 * The tables as TypeScript sees them, on SQLite and PostgreSQL alike. Every time is a whole number
 * of milliseconds since the epoch (a `bigint` column; pg's int8 answers are parsed back into
 * numbers in database.ts). Flags are 0/1 integers, as SQLite has no boolean.
 */
/**
 * Tables of short-lived counters and records whose one-statement writes SQLite commits without
 * waiting for the disk (synchronous=NORMAL; database.ts). A process crash loses none of them; a
 * power cut or OS crash may roll back their last moments, as it would a Redis that keeps nothing
 * on disk: a few attempts or sends uncounted, a session to log in to again, audit lines of the
 * last second. Every other table (accounts, ended sessions, admin grants) waits for the disk on
 * every commit, and so does every transaction, whatever it writes. A new table is durable unless
 * it is added here.
 */
export const RELAXED_DURABILITY_TABLES: ReadonlySet<keyof Schema> = new Set<keyof Schema>([
  'sessions',
  'challenges',
  'issued_codes',
  'code_entry_failures',
  'sending_hourly',
  'verified_numbers',
  'verified_number_accounts',
  'audit_events',
  'api_verifications',
  'api_idempotency',
]);

export interface Schema {
  schema_migrations: SchemaMigrationsTable;
  users: UsersTable;
  audit_events: AuditEventsTable;
  issued_codes: IssuedCodesTable;
  sessions: SessionsTable;
  session_tombstones: SessionTombstonesTable;
  challenges: ChallengesTable;
  admin_seed_names: AdminSeedNamesTable;
  verified_numbers: VerifiedNumbersTable;
  verified_number_accounts: VerifiedNumberAccountsTable;
  sending_hourly: SendingHourlyTable;
  code_entry_failures: CodeEntryFailuresTable;
  one_time_tokens: OneTimeTokensTable;
  user_id_floor: UserIdFloorTable;
  factors: FactorsTable;
  recovery_codes: RecoveryCodesTable;
  remembered_browsers: RememberedBrowsersTable;
  api_keys: ApiKeysTable;
  api_verifications: ApiVerificationsTable;
  api_idempotency: ApiIdempotencyTable;
}

export interface SchemaMigrationsTable {
  name: string;
  applied_at: number;
}

export interface UsersTable {
  id: Generated<number>;
  /** As the person typed it at registration (after NFKC and trimming): what pages show. */
  username: string;
  /** usernameKeyOf(username): unique, what every lookup by name compares (src/users/username.ts). */
  username_key: string;
  password_hash: string;
  phone_e164: string;
  preferred_channel: Channel;
  created_at: number;
  last_login_at: number | null;
  is_admin: Generated<number>;
  /** When the account entered a code sent to its number; null until then (issue 11). */
  phone_verified_at: number | null;
  /** The verified email address, as given (trimmed); null without one (012). */
  email: Generated<string | null>;
  /** emailKeyOf(email): unique among accounts, what /forgot looks an address up by. */
  email_key: Generated<string | null>;
  email_verified_at: Generated<number | null>;
  /** An address given but not yet proven by its link: it receives nothing but that link. */
  pending_email: Generated<string | null>;
  /** When an admin disabled the account (it cannot log in, its sessions end); null while enabled. */
  disabled_at: number | null;
  /** The factor the code page offers first: sms, voice, totp or passkey; null: the phone (015). */
  default_factor: Generated<string | null>;
  /** MFA_POLICY=optional: when the person turned the second step off; null while it is on. */
  two_factor_off_at: Generated<number | null>;
  /** When the recovery codes offer after a login was answered (made or skipped); null: not yet. */
  recovery_codes_offered_at: Generated<number | null>;
  /** When a code to the account's phone last completed a verification. */
  phone_last_used_at: Generated<number | null>;
}

export interface AuditEventsTable {
  id: Generated<number>;
  at: number;
  type: string;
  user_id: number | null;
  username: string | null;
  ip: string | null;
  detail: string | null;
  /** usernameKeyOf(username), or null without a name: what a deletion finds the account's events by (014). */
  username_key: string | null;
}

export interface IssuedCodesTable {
  id: string;
  phone_e164: string;
  scope: Scope;
  code_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  voided_at: number | null;
}

export interface SessionsTable {
  sid: string;
  data: string;
  expires_at: number;
  /** The account the session is signed in as, or null (written by the store with every save). */
  user_id: number | null;
}

export interface SessionTombstonesTable {
  sid: string;
  expires_at: number;
}

export interface ChallengesTable {
  id: string;
  user_id: number;
  scope: Scope;
  phone_e164: string;
  channel: Channel;
  provider: string;
  handle: string | null;
  sent_at: number;
  expires_at: number;
  wrong_attempts: Generated<number>;
  closed_at: number | null;
  close_reason: CloseReason | null;
  /** Orders challenges of one account and scope sent in the same millisecond (findOpen). */
  seq: Generated<number>;
}

export interface AdminSeedNamesTable {
  name: string;
  first_listed_at: number;
  /** The highest users.id when the name was first listed (0 with no accounts). */
  last_user_id_then: number;
}

/** Numbers that completed a code (the toll-fraud guard lets them through a spent budget). */
export interface VerifiedNumbersTable {
  phone_e164: string;
  first_verified_at: number;
  last_verified_at: number;
}

/** Which accounts completed a code to which number: each such holder has its own allowance. */
export interface VerifiedNumberAccountsTable {
  phone_e164: string;
  user_id: number;
  first_verified_at: number;
  last_verified_at: number;
}

/** Sends, verifications and refusals per country, event and UTC hour (hours since the epoch). */
export interface SendingHourlyTable {
  country: string;
  event: SendingEvent;
  hour: number;
  count: number;
}

/** Wrong codes in a row per account; `suspended_at` once it reached the ceiling. */
export interface CodeEntryFailuresTable {
  user_id: number;
  consecutive: Generated<number>;
  suspended_at: number | null;
}

/** One-time links (email verification, password reset, account deletion): only a digest is kept. */
export interface OneTimeTokensTable {
  /** SHA-256 of the token, hex. */
  token_hash: string;
  purpose: string;
  user_id: number;
  /** What the link was made for (the address to verify, a binding to the browser that asked). */
  detail: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** SQLite only: the highest id a deleted account had; new accounts are numbered above it (014). */
export interface UserIdFloorTable {
  singleton: number;
  highest_deleted_id: number;
}

/** Authenticator apps and passkeys (015): one row each, the columns of the other kind null. */
export interface FactorsTable {
  id: Generated<number>;
  user_id: number;
  kind: 'totp' | 'passkey';
  label: string;
  created_at: number;
  last_used_at: number | null;
  /** totp: the secret, sealed (src/factors/secrets.ts). */
  totp_secret: string | null;
  /** totp: the last time step a code was accepted for; a code of that step or before is refused. */
  totp_last_step: number | null;
  /** passkey: the credential id (base64url), unique across the site. */
  credential_id: string | null;
  /** passkey: the COSE public key (base64url). */
  public_key: string | null;
  sign_count: number | null;
  /** passkey: the authenticator's transports, comma-separated (usb, internal, hybrid...). */
  transports: string | null;
  /** passkey: whether the registration verified the user (PIN, biometrics): 0 or 1. */
  user_verified: number | null;
}

/** Recovery codes (015): an HMAC of each, never the code. */
export interface RecoveryCodesTable {
  user_id: number;
  code_hmac: string;
  created_at: number;
  used_at: number | null;
}

/** "Remember this browser" (015): the token's SHA-256 only. */
export interface RememberedBrowsersTable {
  id: Generated<number>;
  user_id: number;
  token_hash: string;
  /** What the person sees in settings: "Firefox on Windows". */
  label: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
}

/** API keys (016): the SHA-256 of each key only, never the key. */
export interface ApiKeysTable {
  id: Generated<number>;
  name: string;
  key_hash: string;
  key_hint: string;
  /** Comma-separated channels the key may use: `sms`, `voice`, `sms,voice`. */
  channels: string;
  created_by: number | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** One code sent through the verification API (src/api/verification-store.ts). Never holds the code. */
export interface ApiVerificationsTable {
  id: string;
  key_id: number;
  label: string;
  phone_e164: string;
  channel: Channel;
  provider: string;
  handle: string | null;
  created_at: number;
  expires_at: number;
  /** Attempts used, counting one taken by a check still in flight. */
  attempts: Generated<number>;
  status: ApiVerificationStatus;
  closed_at: number | null;
  /** Set while a check asks the provider: checks of one verification run one at a time. */
  checking_until: number | null;
}

/** An Idempotency-Key's claim and, once answered, the answer (src/api/idempotency.ts). */
export interface ApiIdempotencyTable {
  key_id: number;
  idempotency_key: string;
  request_hash: string;
  response_status: number | null;
  response_body: string | null;
  created_at: number;
  completed_at: number | null;
}
