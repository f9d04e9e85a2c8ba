import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { User } from '../users/store.js';
import type { FactorSecrets } from './secrets.js';
import type { Factor, FactorStore, TotpFactor } from './store.js';

/**
 * Authenticator apps (issue 12): RFC 6238 as every app reads it from an otpauth:// URI (SHA-1,
 * 6 digits, 30 seconds), with one step of drift either way for a phone whose clock is a little
 * off. The secret is sealed at rest (FACTOR_ENCRYPTION_KEY) and bound to its account; each time
 * step lets one code in, once, whichever instance checks it (store.acceptTotpStep). The attempt
 * limits that stop guessing are the code page's (MfaService.checkFactorGuess), not this module's.
 */
export const TOTP_ALGORITHM = 'SHA1';
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Steps either side of now whose code is accepted: a clock up to about 30 seconds off. */
export const TOTP_WINDOW_STEPS = 1;
/** 160 bits, the size RFC 4226 recommends for an HMAC-SHA-1 key. */
export const TOTP_SECRET_BYTES = 20;
/**
 * Wrong app codes at password resets, per account across their sessions, in 24 hours: each reset
 * link ends after 10 wrong codes, but whoever reads the mailbox can ask for 10 links a day
 * (RESET_LINKS_PER_ACCOUNT_PER_DAY).
 */
export const RESET_APP_FAILURES_PER_DAY = 10;
/** One app per account: a second would only be a second copy of the same kind of factor. */
export const MAX_APPS_PER_ACCOUNT = 1;
export const DEFAULT_APP_LABEL = 'Authenticator app';
export const APP_LABEL_MAX_LENGTH = 64;

/** What a sealed app secret is bound to: opened under another account's id, it fails. */
export const totpSealContext = (userId: number) => `totp:${userId}`;

export interface Totp {
  /** A fresh secret for an enrolment, with its otpauth:// URI (issuer = site name, label = username) and a QR code as SVG (qrcode package, toString type 'svg'). */
  beginEnrolment(user: User): Promise<{ secret: string /* base32 */; uri: string; qrSvg: string }>;
  /** A correct code for that secret stores the app as a factor (sealed), with that code's step marked used. At most one app per account (refused: 'already_has_app'). */
  confirmEnrolment(
    user: User,
    secretBase32: string,
    code: string,
    label: string,
  ): Promise<{ ok: true; factor: TotpFactor } | { ok: false; reason: 'wrong_code' | 'already_has_app' }>;
  /**
   * Checks a code against the account's app: the matching step (with drift) is accepted only once
   * (store.acceptTotpStep, atomic). 'unusable': the app's secret will not open (see isUsable).
   */
  check(
    userId: number,
    code: string,
  ): Promise<
    { ok: true; factor: TotpFactor } | { ok: false; reason: 'wrong' | 'replayed' | 'no_app' | 'unusable' }
  >;
  /**
   * Whether the app's sealed secret opens. One sealed under another FACTOR_ENCRYPTION_KEY (the key
   * was changed, or lost) will never open again: that app is no usable factor, and the operator
   * hears of it in the log, rather than every code for it becoming a 500.
   */
  isUsable(app: TotpFactor): boolean;
}

/**
 * A code as typed: full-width digits folded (NFKC), spaces and dashes dropped ("123 456", as the
 * code page takes a phone code); null when what is left is not exactly six digits, so nothing
 * else ever reaches a comparison.
 */
export function normaliseTotpCode(input: string): string | null {
  const code = input.normalize('NFKC').replace(/[\s-]+/g, '');
  return new RegExp(`^[0-9]{${TOTP_DIGITS}}$`).test(code) ? code : null;
}

/** The app of an account, if it has one. */
export async function findAuthenticatorApp(factors: FactorStore, userId: number): Promise<TotpFactor | null> {
  return appOf(await factors.listForUser(userId));
}

function appOf(factors: Factor[]): TotpFactor | null {
  return factors.find((factor): factor is TotpFactor => factor.kind === 'totp') ?? null;
}

/** What /account/security says of the account's app (views/account/security-app.ejs); null: none yet. */
export function appStatusOf(
  factors: Factor[],
): { label: string; addedAt: Date; lastUsedAt: Date | null } | null {
  const app = appOf(factors);
  return app && { label: app.label, addedAt: app.createdAt, lastUsedAt: app.lastUsedAt };
}

function stepAt(now: Date): number {
  return Math.floor(now.getTime() / 1000 / TOTP_PERIOD_SECONDS);
}

/**
 * Every step in the window whose code this is. Each candidate is compared in constant time, and all
 * of them always are, so the time taken says nothing about which step (if any) matched.
 */
function matchingSteps(secret: Secret, code: string, now: Date): number[] {
  const current = stepAt(now);
  const typed = Buffer.from(code);
  const matches: number[] = [];
  for (let step = current - TOTP_WINDOW_STEPS; step <= current + TOTP_WINDOW_STEPS; step++) {
    const expected = Buffer.from(
      HOTP.generate({ secret, algorithm: TOTP_ALGORITHM, digits: TOTP_DIGITS, counter: step }),
    );
    if (expected.length === typed.length && timingSafeEqual(expected, typed)) matches.push(step);
  }
  return matches;
}

/**
 * The otpauth:// URI of a secret and its QR code, drawn again for an enrolment under way (the page
 * shown again after a wrong code, or reloaded, must show the secret the app already scanned).
 */
export async function drawEnrolment(options: {
  issuer: string;
  username: string;
  secret: string;
}): Promise<{ uri: string; qrSvg: string }> {
  const uri = new TOTP({
    issuer: options.issuer,
    label: options.username,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: Secret.fromBase32(options.secret),
  }).toString();
  // Drawn here as paths only: no script, no style attribute, nothing fetched (CSP intact).
  const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 });
  return { uri, qrSvg };
}

function secretFromBytes(bytes: Buffer): Secret {
  // A copy: a Buffer may be a view on a larger shared pool, and Secret keeps the whole ArrayBuffer.
  return new Secret({ buffer: Uint8Array.from(bytes).buffer });
}

export function createTotp(deps: {
  factors: FactorStore;
  secrets: FactorSecrets;
  clock: Clock;
  issuer: string;
  logger: Logger;
}): Totp {
  const { factors, secrets, clock, issuer } = deps;
  /** Apps whose secret would not open, already logged (once per app and process, not per page). */
  const reportedUnusable = new Set<number>();

  function openSecret(app: TotpFactor): Secret | null {
    try {
      return secretFromBytes(secrets.open(app.sealedSecret, totpSealContext(app.userId)));
    } catch (error) {
      if (!reportedUnusable.has(app.id)) {
        reportedUnusable.add(app.id);
        deps.logger.error(
          { err: error, userId: app.userId, factorId: app.id },
          'an authenticator app’s secret does not open with FACTOR_ENCRYPTION_KEY (the key changed?): the app cannot be used until the owner adds it again',
        );
      }
      return null;
    }
  }

  return {
    async beginEnrolment(user) {
      const secret = secretFromBytes(randomBytes(TOTP_SECRET_BYTES)).base32;
      return { secret, ...(await drawEnrolment({ issuer, username: user.username, secret })) };
    },

    async confirmEnrolment(user, secretBase32, code, label) {
      const typed = normaliseTotpCode(code);
      if (typed === null) return { ok: false, reason: 'wrong_code' };
      if (await findAuthenticatorApp(factors, user.id)) return { ok: false, reason: 'already_has_app' };
      const secret = Secret.fromBase32(secretBase32);
      if (secret.bytes.length < TOTP_SECRET_BYTES) throw new Error('an app secret must be at least 160 bits');
      const steps = matchingSteps(secret, typed, clock.now());
      if (steps.length === 0) return { ok: false, reason: 'wrong_code' };
      // The code that proved the app is spent: it cannot also be the next login's.
      const factor = await factors.add(
        {
          kind: 'totp',
          userId: user.id,
          label: label.trim().slice(0, APP_LABEL_MAX_LENGTH) || DEFAULT_APP_LABEL,
          sealedSecret: secrets.seal(Buffer.from(secret.bytes), totpSealContext(user.id)),
          lastStep: Math.max(...steps),
        },
        { maxPerKind: MAX_APPS_PER_ACCOUNT },
      );
      // Null: another enrolment of this account won the race for its one app.
      return factor?.kind === 'totp' ? { ok: true, factor } : { ok: false, reason: 'already_has_app' };
    },

    async check(userId, code) {
      const app = await findAuthenticatorApp(factors, userId);
      if (!app) return { ok: false, reason: 'no_app' };
      const typed = normaliseTotpCode(code);
      if (typed === null) return { ok: false, reason: 'wrong' };
      const secret = openSecret(app);
      if (!secret) return { ok: false, reason: 'unusable' };
      const now = clock.now();
      const steps = matchingSteps(secret, typed, now);
      if (steps.length === 0) return { ok: false, reason: 'wrong' };
      // A code seen once (over a shoulder, in a phishing proxy) is refused for good, even when it
      // happens to be valid for a later step of the window too.
      if (app.lastStep !== null && steps.some((step) => step <= app.lastStep!)) {
        return { ok: false, reason: 'replayed' };
      }
      const step = Math.max(...steps);
      // One conditional update: of two requests with the same code, on one instance or two, only
      // the one whose update changes the row gets in.
      if (!(await factors.acceptTotpStep(app.id, step, now))) return { ok: false, reason: 'replayed' };
      return { ok: true, factor: { ...app, lastStep: step, lastUsedAt: now } };
    },

    isUsable: (app) => openSecret(app) !== null,
  };
}
