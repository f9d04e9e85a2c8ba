import type { Channel } from '../mfa/provider.js';

export interface User {
  id: number;
  /** As registered (NFKC, trimmed, case kept): what pages show. */
  username: string;
  passwordHash: string;
  phone: string;
  preferredChannel: Channel;
  createdAt: Date;
  lastLoginAt: Date | null;
  /** May enter the secure area (after its own code). Set only by the operator, never by registering. */
  isAdmin: boolean;
  /**
   * When the account proved its number by entering a code sent to it; null for a new account until
   * then. An unproven account cannot log in (its password leads to that code instead).
   */
  phoneVerifiedAt: Date | null;
  /** The verified email address (its link was opened); null without one. Notices and resets go here. */
  email: string | null;
  emailVerifiedAt: Date | null;
  /** An address given but not yet proven: it receives nothing but its verification link. */
  pendingEmail: string | null;
  /**
   * When an admin disabled the account; null while it is enabled. A disabled account's login
   * answers as a wrong password does, and its signed-in sessions stop working at once.
   */
  disabledAt: Date | null;
  /** The factor the code page offers first (issue 12); null: the phone, by its preferred channel. */
  defaultFactor: DefaultFactor | null;
  /** MFA_POLICY=optional: when the person turned the second step off; null while it is on. */
  twoFactorOffAt: Date | null;
  /** When the offer of recovery codes after a login was answered (codes made, or skipped once). */
  recoveryCodesOfferedAt: Date | null;
  /** When a code to the account's phone last completed a verification (the phone as a factor). */
  phoneLastUsedAt: Date | null;
}

/** What can be an account's default factor: never recovery codes (they are for a lost phone). */
export type DefaultFactor = 'sms' | 'voice' | 'totp' | 'passkey';

/** What `disable` did: only an enabled account that is not an admin is disabled. */
export type DisableOutcome = 'disabled' | 'already_disabled' | 'is_admin' | 'no_such_account';

/** What deleting an account did: the last admin is never deleted (the site would lose its secure area). */
export type DeleteOutcome = 'deleted' | 'last_admin' | 'no_such_account';

export interface NewUser {
  username: string;
  passwordHash: string;
  phone: string;
  preferredChannel: Channel;
}

/**
 * Accounts. Every lookup by name compares usernameKeyOf(name) (src/users/username.ts): "Alice",
 * "alice" and "ａｌｉｃｅ" are one account, in every backend. Backends: src/stores/sql/user-store.ts.
 */
export interface UserStore {
  /** Returns null when the username is taken (by any name with the same key), even by a racing registration. */
  create(user: NewUser): Promise<User | null>;
  findById(id: number): Promise<User | null>;
  findByUsername(username: string): Promise<User | null>;
  setPreferredChannel(id: number, channel: Channel): Promise<void>;
  /** Records a completed login and returns the one before it (null on the first). */
  recordLogin(id: number): Promise<Date | null>;
  /** The newest 500 accounts, newest first. */
  list(): Promise<User[]>;
  /**
   * Gives or takes away admin rights; the name is matched as login matches it. With `onlyId`, only
   * if the account with that name is still that one (checked and granted in one statement: an
   * account deleted meanwhile, and its name registered again, does not get the role). Returns
   * false when no such account has that name.
   */
  setAdmin(username: string, isAdmin: boolean, onlyId?: number): Promise<boolean>;
  /** Every admin, by name. */
  listAdmins(): Promise<User[]>;
  /**
   * Disables an account, in one conditional write: never an admin's (the role is the operator's to
   * take away first), so no admin, or two admins racing, can lock the site's admins out.
   */
  disable(id: number): Promise<DisableOutcome>;
  /** Enables a disabled account again; false when it was not disabled (or is gone). */
  enable(id: number): Promise<boolean>;
  /**
   * How many accounts have proven this E.164 number (the toll-fraud guard caps it). Unproven ones
   * do not count: a stranger's sign-ups with a number must not use up its owner's accounts.
   */
  countProvenByPhone(phone: string): Promise<number>;
  /**
   * Records that the account proved `phone` (a code sent to it was entered). False when the
   * account's number is no longer that one (corrected meanwhile) or was proven already.
   */
  markPhoneProven(id: number, phone: string): Promise<boolean>;
  /**
   * Replaces the number of an account that has not proven one yet (a mistyped number at sign-up).
   * False when the account has proven its number (that change needs the settings page), has
   * logged in before (its number was replaced by an admin: only the new one may be proven), or is gone.
   */
  replaceUnprovenPhone(id: number, phone: string): Promise<boolean>;
  /**
   * An admin's replacement of a lost number (src/admin/phone-replacement.ts): the account's number
   * becomes `to`, unproven, so its next password leads to a code sent to `to`. Only if its number
   * is still `from` (two admins racing: one wins) and it has logged in before, which is what keeps
   * deleteUnprovenMadeBefore from ever removing it. Returns whether it changed.
   */
  replacePhoneToProve(id: number, from: string, to: string): Promise<boolean>;
  /**
   * Deletes at most `batchSize` accounts that never proved their number and were made before
   * `madeBefore`, oldest first; says how many went (housekeeping).
   */
  deleteUnprovenMadeBefore(madeBefore: Date, batchSize: number): Promise<number>;
  /** Stores a new password hash (a change or a reset; the caller ends the sessions). */
  setPasswordHash(id: number, passwordHash: string): Promise<void>;
  /**
   * A proven account's new number, itself just proven by a code sent to it: only if the account's
   * number is still `from` (two changes racing: one wins). Returns whether it changed.
   */
  changeProvenPhone(id: number, from: string, to: string): Promise<boolean>;
  /** Records an address to verify (its link is on its way), or forgets the one waiting. */
  setPendingEmail(id: number, address: string | null): Promise<void>;
  /**
   * The link of `address` was opened: it becomes the account's verified address, only if it is
   * still the one waiting (a later change voids the earlier link). 'taken' when another account
   * verified that address first (one mailbox, one account), even in a race.
   */
  confirmEmail(id: number, address: string): Promise<'confirmed' | 'taken' | 'stale'>;
  /** Removes the verified address and any waiting one. */
  removeEmail(id: number): Promise<void>;
  /** The account whose verified address this is (compared by emailKeyOf), if any. */
  findByVerifiedEmail(address: string): Promise<User | null>;
  /**
   * Deletes the account for good (the person asked; src/account/deletion.ts): its row and every
   * row that hangs off it, and what the site keeps about its number when no other account has that
   * number (codes issued to it, its "completed a code" fact). Refused for the only admin, even
   * with two admins deleting themselves at once. Its id is never given to a later account.
   */
  deleteAccount(id: number): Promise<DeleteOutcome>;
  /** The factor the code page offers first; null: the phone (issue 12). */
  setDefaultFactor(id: number, factor: DefaultFactor | null): Promise<void>;
  /** MFA_POLICY=optional: turns the second step off (true) or on again (false). */
  setTwoFactorOff(id: number, off: boolean): Promise<void>;
  /**
   * The recovery codes offer was answered (made or skipped): it is not shown again after a login.
   * True only for the call that answered it first (one conditional write: of two racing, one).
   */
  markRecoveryCodesOffered(id: number): Promise<boolean>;
  /** A code to the account's phone completed a verification just now. */
  recordPhoneUse(id: number): Promise<void>;
}
