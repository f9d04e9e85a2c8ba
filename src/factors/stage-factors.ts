import type { Channel } from '../mfa/provider.js';
import type { SendOutcome } from '../mfa/service.js';
import type { User } from '../users/store.js';
import type { AdminStepUpFactor } from './config.js';
import type { FactorStore, PasskeyFactor, TotpFactor } from './store.js';

/**
 * Which factors each code page accepts (issue 12), and which of them an account has.
 *
 * - login: the phone (text or call), an authenticator app, a passkey, a recovery code;
 * - reset (after a reset link): the same, a recovery code included (a lost phone is what it is for);
 * - settings: the phone, an app, a passkey; never a recovery code. But an admin's settings, when the
 *   admin step-up takes no phone code and the admin has a factor it accepts: only what it accepts
 *   (settingsTakeOnlyAdminFactors below);
 * - admin: ADMIN_STEP_UP_FACTORS only, strongest first (recovery codes are refused by the config),
 *   and only passkeys made with user verification (PIN, biometrics), which it requires;
 * - signup and phone_change prove a number, so only a code sent to that number will do.
 *
 * Remembered browsers are no factor of a code page: they skip the login's page altogether.
 */
export type StageKind = 'login' | 'signup' | 'admin' | 'settings' | 'phone_change' | 'reset';

export type StageMethod = 'phone' | 'totp' | 'passkey' | 'recovery';
export const STAGE_METHODS: readonly StageMethod[] = ['phone', 'totp', 'passkey', 'recovery'];

/** One way to finish a stage, as "Try another way" lists it. */
export type StageOption = { method: 'phone'; channel: Channel } | { method: 'totp' | 'passkey' | 'recovery' };

/** What the code page needs of the recovery codes (src/factors/recovery-codes.ts). */
export interface RecoveryCodeCount {
  remaining(userId: number): Promise<number>;
}

/**
 * The factors the site checks itself, as the code page calls them (src/factors/totp.ts,
 * recovery-codes.ts, passkeys.ts). Each is absent until wired; a stage then never offers it.
 */
export interface FactorCheckers {
  totp?: {
    check(
      userId: number,
      code: string,
    ): Promise<
      | { ok: true; factor: { label: string } }
      | { ok: false; reason: 'wrong' | 'replayed' | 'no_app' | 'unusable' }
    >;
    /** False for an app whose secret will not open (FACTOR_ENCRYPTION_KEY changed): no stage offers it. */
    isUsable?(app: TotpFactor): boolean;
  };
  recoveryCodes?: RecoveryCodeCount & {
    use(userId: number, input: string): Promise<{ ok: true; left: number } | { ok: false }>;
  };
  passkeys?: {
    authenticationOptions(
      user: User,
      options: { userVerification: 'required' | 'preferred' },
    ): Promise<{ challenge: string }>;
    finishAuthentication(
      user: User,
      response: unknown,
      expectedChallenge: string,
      options: { requireUserVerification: boolean },
    ): Promise<{ ok: true; factor: { label: string } } | { ok: false; reason: string; message: string }>;
  };
}

export interface StageFactors {
  /** The ways this stage accepts that the account has now, in the order they are offered. */
  options(user: User, kind: StageKind): Promise<StageOption[]>;
  /**
   * The way a stage opens: for the admin step-up the strongest the admin has; otherwise the
   * account's default factor when the stage accepts it and the account has it, else the phone by
   * the account's channel. Null when the account has nothing the stage accepts (an admin without
   * a passkey or an app while ADMIN_STEP_UP_FACTORS lists only those).
   */
  opening(user: User, kind: StageKind, preferredChannel?: Channel): Promise<StageOption | null>;
  /** Whether a method (and, for the phone, a channel) may finish this stage for this account now. */
  accepts(user: User, kind: StageKind, option: StageOption): Promise<boolean>;
  /**
   * Whether a passkey must verify its user (PIN, biometrics) at this stage: the admin step-up's
   * rule, and so also that of the settings of an admin whose settings take only its factors.
   */
  passkeyNeedsUserVerification(user: User, kind: StageKind): Promise<boolean>;
}

/** The phone channels a stage accepts: all the providers deliver by, but for the admin step-up its list. */
function phoneChannelsFor(
  kind: StageKind,
  deliverable: Channel[],
  adminFactors: readonly AdminStepUpFactor[],
) {
  if (kind !== 'admin') return deliverable;
  return adminFactors
    .filter((factor): factor is Channel => factor === 'sms' || factor === 'voice')
    .filter((channel) => deliverable.includes(channel));
}

const OTHER_METHODS_BY_KIND: Record<Exclude<StageKind, 'admin'>, Array<'totp' | 'passkey' | 'recovery'>> = {
  login: ['passkey', 'totp', 'recovery'],
  reset: ['passkey', 'totp', 'recovery'],
  settings: ['passkey', 'totp'],
  signup: [],
  phone_change: [],
};

export function createStageFactors(deps: {
  factors: FactorStore;
  /** The factors the site checks itself: one not wired is offered by no stage. */
  checkers: FactorCheckers;
  /** The channels the configured providers deliver by. */
  channels: () => Channel[];
  adminStepUpFactors: readonly AdminStepUpFactor[];
}): StageFactors {
  async function has(user: User, kind: StageKind) {
    const stored = await deps.factors.listForUser(user.id);
    const { totp, passkeys, recoveryCodes } = deps.checkers;
    return {
      totp:
        totp !== undefined &&
        stored.some(
          (factor): factor is TotpFactor =>
            factor.kind === 'totp' && (totp.isUsable === undefined || totp.isUsable(factor)),
        ),
      // The secure area requires user verification: a passkey made without it does not count there.
      passkey:
        passkeys !== undefined &&
        stored.some(
          (factor): factor is PasskeyFactor =>
            factor.kind === 'passkey' && (kind !== 'admin' || factor.userVerified),
        ),
      recovery: recoveryCodes ? (await recoveryCodes.remaining(user.id)) > 0 : false,
    };
  }

  /**
   * The admin step-up's ways, when this account's settings must take only those; else null.
   * Threat: with ADMIN_STEP_UP_FACTORS naming no phone channel, someone holding an admin's
   * password and phone (a SIM swap) would log in by text, confirm the settings by text, add an
   * app or a passkey of their own, and enter the secure area with it. So once an admin has a factor
   * the step-up accepts, confirming a change (a new factor, a new number) takes one of those too.
   * An admin who has none yet still confirms by phone: otherwise they could never add the first.
   */
  async function settingsTakeOnlyAdminFactors(user: User): Promise<StageOption[] | null> {
    if (!user.isAdmin) return null;
    const adminWays = await options(user, 'admin');
    const takesPhoneCodes = adminWays.some((way) => way.method === 'phone');
    return !takesPhoneCodes && adminWays.length > 0 ? adminWays : null;
  }

  async function options(user: User, kind: StageKind): Promise<StageOption[]> {
    if (kind === 'settings') {
      const adminOnly = await settingsTakeOnlyAdminFactors(user);
      if (adminOnly) return adminOnly;
    }
    const owned = await has(user, kind);
    const channels = phoneChannelsFor(kind, deps.channels(), deps.adminStepUpFactors);
    if (kind === 'admin') {
      // In the operator's order of preference, each only if the admin has it.
      const listed: StageOption[] = [];
      for (const factor of deps.adminStepUpFactors) {
        if (factor === 'sms' || factor === 'voice') {
          if (channels.includes(factor)) listed.push({ method: 'phone', channel: factor });
        } else if (owned[factor]) {
          listed.push({ method: factor });
        }
      }
      return listed;
    }
    const others = OTHER_METHODS_BY_KIND[kind].filter((method) => owned[method]);
    return [
      ...others.filter((method) => method !== 'recovery').map((method) => ({ method })),
      ...channels.map((channel) => ({ method: 'phone' as const, channel })),
      // Last: a recovery code is for when nothing else is at hand.
      ...others.filter((method) => method === 'recovery').map((method) => ({ method })),
    ];
  }

  return {
    options,
    async opening(user, kind, preferredChannel = user.preferredChannel) {
      const available = await options(user, kind);
      if (kind === 'admin') {
        const strongest = available[0] ?? null;
        // A text and a call are as strong as each other: the admin's own channel, when listed.
        if (strongest?.method !== 'phone') return strongest;
        return (
          available.find((option) => option.method === 'phone' && option.channel === preferredChannel) ??
          strongest
        );
      }
      const chosen = user.defaultFactor;
      if (chosen === 'totp' || chosen === 'passkey') {
        const own = available.find((option) => option.method === chosen);
        if (own) return own;
      }
      // An admin's settings that take no phone code: the first of the admin step-up's ways.
      if (kind === 'settings' && (await settingsTakeOnlyAdminFactors(user))) return available[0] ?? null;
      // A phone default is the account's channel (set together); a channel chosen on the login form wins.
      const channel = preferredChannel;
      // Even a channel no provider delivers by: the send is refused and the code page says so,
      // offering the ways that work, rather than sending by another way unasked.
      return { method: 'phone', channel };
    },
    async accepts(user, kind, option) {
      const available = await options(user, kind);
      return available.some(
        (candidate) =>
          candidate.method === option.method &&
          (candidate.method !== 'phone' || option.method !== 'phone' || candidate.channel === option.channel),
      );
    },
    async passkeyNeedsUserVerification(user, kind) {
      if (kind === 'admin') return true;
      return kind === 'settings' && (await settingsTakeOnlyAdminFactors(user)) !== null;
    },
  };
}

/** How a stage begins: a code to send by a channel, a factor that sends nothing, or nothing the stage accepts. */
export type StageOpening = { sendBy: Channel } | { showFactor: true } | { nothingAccepted: true };

/**
 * Called where a stage begins (the password step, the admin step-up, "confirm it is you", a reset
 * link): the page opens on the account's default factor, and only a phone opening sends a code,
 * so a person who uses an app or a passkey costs the site no message.
 */
export async function openStage(
  session: { factorMethod?: { kind: string; method: 'totp' | 'passkey' | 'recovery' } },
  stageFactors: StageFactors,
  user: User,
  kind: StageKind,
  preferredChannel?: Channel,
): Promise<StageOpening> {
  delete session.factorMethod;
  const opening = await stageFactors.opening(user, kind, preferredChannel);
  if (!opening) return { nothingAccepted: true };
  if (opening.method === 'phone') return { sendBy: opening.channel };
  session.factorMethod = { kind, method: opening.method };
  return { showFactor: true };
}

/**
 * Called where a stage's code was refused (the password step, the admin step-up, "confirm it is
 * you"). Threat: whoever has only the password enters wrong codes after it until the account's
 * code entry is paused or suspended, and so keeps the owner from logging in or from confirming a
 * change of the password they know. The account's passkey still works (its answer cannot be
 * guessed), so the code page opens on it, where it says why codes are paused, rather than on a
 * wait. An app's code stays closed, as the code page keeps it: it is a code that can be guessed.
 * True when the stage now opens on the passkey; otherwise the session is left as it was.
 */
export async function openOnPasskeyWhileCodesPaused(
  session: { factorMethod?: { kind: string; method: 'totp' | 'passkey' | 'recovery' } },
  stageFactors: StageFactors,
  user: User,
  kind: StageKind,
  refusal: Exclude<SendOutcome, { ok: true }>,
): Promise<boolean> {
  if (refusal.reason !== 'locked' && refusal.reason !== 'suspended') return false;
  if (!(await stageFactors.accepts(user, kind, { method: 'passkey' }))) return false;
  session.factorMethod = { kind, method: 'passkey' };
  return true;
}
