import { randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { User } from '../users/store.js';
import type { RecoveryCodeStore } from './recovery-code-store.js';
import type { FactorSecrets } from './secrets.js';

/**
 * Recovery codes (issue 12): what gets a person in when the phone is lost. Ten codes, each good
 * once, for the login and reset scopes only (never the secure area). Only a keyed digest of each
 * is stored (FactorSecrets.recoveryCodeDigest), so a copy of the database gives none away.
 */
export const RECOVERY_CODE_COUNT = 10;
/** 16 characters of a 32-letter alphabet: 80 random bits per code. */
export const RECOVERY_CODE_LENGTH = 16;
/** Crockford's base32: no I, L, O or U, so a code read aloud or from paper is not misread. */
export const RECOVERY_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** The code page's own bucket for wrong recovery codes, under the overall ceiling. */
export const RECOVERY_FAILURES_PER_HOUR = 10;
/** At or below this many unused codes, the account page warns. */
export const RECOVERY_CODES_LOW = 3;

export interface RecoveryCodeStatus {
  /** Codes in the current set, used or not (0: the account has no set). */
  total: number;
  left: number;
  createdAt: Date | null;
}

export interface RecoveryCodes {
  /**
   * 10 new codes, each 80 random bits as 16 characters of RECOVERY_CODE_ALPHABET, shown as 4
   * groups of 4 (ABCD-EFGH-JKMN-PQRS); only their digests are stored; the old set is void.
   */
  generate(userId: number): Promise<string[]>;
  /** As generate, but only for an account with no set at all (the offer after a login); else null. */
  generateFirstSet(userId: number): Promise<string[] | null>;
  /**
   * Spends a code if it is one of the account's unused ones (typed in any case, with spaces or
   * dashes, O for 0 and I or L for 1); says how many are left.
   */
  use(userId: number, input: string): Promise<{ ok: true; left: number } | { ok: false }>;
  remaining(userId: number): Promise<number>;
  /** Whether the account has a set at all (even fully used), and when it was made. */
  status(userId: number): Promise<RecoveryCodeStatus>;
}

/** Longer than any way of typing a code (16 characters, dashes, spaces): not one, whatever it holds. */
const MAX_INPUT_LENGTH = 64;
const CODE_SHAPE = new RegExp(`^[${RECOVERY_CODE_ALPHABET}]{${RECOVERY_CODE_LENGTH}}$`);

/**
 * The code as it is digested: upper case, without spaces or dashes, with the letters Crockford's
 * base32 reads as digits (O as 0, I and L as 1); null when it cannot be a code.
 */
export function normaliseRecoveryCode(input: string): string | null {
  if (input.length > MAX_INPUT_LENGTH) return null;
  const code = input
    // Full-width letters and digits (a phone keyboard's) read as the ordinary ones.
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\-\u2010-\u2015]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  return CODE_SHAPE.test(code) ? code : null;
}

/** ABCDEFGHJKMNPQRS → ABCD-EFGH-JKMN-PQRS, as the person sees and writes it down. */
export function formatRecoveryCode(normalised: string): string {
  return normalised.match(/.{1,4}/g)!.join('-');
}

function newCode(): string {
  let code = '';
  // randomInt draws without bias: each character is 5 uniform bits.
  for (let index = 0; index < RECOVERY_CODE_LENGTH; index += 1) {
    code += RECOVERY_CODE_ALPHABET[randomInt(RECOVERY_CODE_ALPHABET.length)];
  }
  return code;
}

/** Ten distinct codes (two alike, with 80 bits each, would be a broken generator; the set refuses it anyway). */
function newSet(): string[] {
  const codes = new Set<string>();
  while (codes.size < RECOVERY_CODE_COUNT) codes.add(newCode());
  return [...codes];
}

/**
 * Whether the person should be offered recovery codes after a full login: the account has none
 * and has not answered the offer (made or skipped). Not while the second step is turned off
 * (MFA_POLICY=optional): such a login asked for no phone to lose.
 */
export function shouldOfferRecoveryCodes(
  user: Pick<User, 'recoveryCodesOfferedAt' | 'twoFactorOffAt'>,
  status: Pick<RecoveryCodeStatus, 'total'>,
): boolean {
  return status.total === 0 && user.recoveryCodesOfferedAt === null && user.twoFactorOffAt === null;
}

export function createRecoveryCodes(deps: {
  store: RecoveryCodeStore;
  secrets: FactorSecrets;
  clock: Clock;
}): RecoveryCodes {
  const { store, secrets, clock } = deps;
  const digestsOf = (userId: number, codes: string[]) =>
    codes.map((code) => secrets.recoveryCodeDigest(userId, code));

  return {
    async generate(userId) {
      const codes = newSet();
      await store.replaceAll(userId, digestsOf(userId, codes));
      return codes.map(formatRecoveryCode);
    },
    async generateFirstSet(userId) {
      const codes = newSet();
      const made = await store.addFirstSet(userId, digestsOf(userId, codes));
      return made ? codes.map(formatRecoveryCode) : null;
    },
    async use(userId, input) {
      const code = normaliseRecoveryCode(input);
      if (code === null) return { ok: false };
      // Looked up by its keyed digest: the database compares digests an attacker cannot choose, so
      // how long the lookup takes says nothing about the codes.
      const spent = await store.spend(userId, secrets.recoveryCodeDigest(userId, code), clock.now());
      if (!spent) return { ok: false };
      return { ok: true, left: await store.countUnused(userId) };
    },
    remaining: (userId) => store.countUnused(userId),
    async status(userId) {
      const { total, unused, createdAt } = await store.summary(userId);
      return { total, left: unused, createdAt };
    },
  };
}
