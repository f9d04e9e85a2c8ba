import type { Channel } from '../mfa/provider.js';
import { describeChannel } from '../mfa/provider.js';
import { maskPhone } from '../users/phone.js';
import type { DefaultFactor, User } from '../users/store.js';
import type { Factor } from './store.js';

/**
 * An account's factors as /account/security lists them (issue 12): the phone first (the account's
 * proven number, never removed here: it is changed), then its apps and passkeys. Recovery codes
 * have their own section. Which one the code page opens with is the account's default factor.
 */
export interface ListedFactor {
  /** null for the phone, which is no row of the factor store. */
  id: number | null;
  kind: 'phone' | 'totp' | 'passkey';
  label: string;
  describedAs: string;
  addedAt: Date | null;
  lastUsedAt: Date | null;
  isDefault: boolean;
}

export const FACTOR_KIND_NAMES: Record<ListedFactor['kind'], string> = {
  phone: 'Phone',
  totp: 'Authenticator app',
  passkey: 'Passkey',
};

export function effectiveDefault(user: User, factors: Factor[]): DefaultFactor {
  const chosen = user.defaultFactor;
  if ((chosen === 'totp' || chosen === 'passkey') && factors.some((factor) => factor.kind === chosen)) {
    return chosen;
  }
  return chosen === 'sms' || chosen === 'voice' ? chosen : user.preferredChannel;
}

export function listFactors(user: User, factors: Factor[]): ListedFactor[] {
  const byDefault = effectiveDefault(user, factors);
  return [
    {
      id: null,
      kind: 'phone',
      label: maskPhone(user.phone),
      describedAs: `Codes by ${describeChannel(user.preferredChannel)}`,
      addedAt: user.phoneVerifiedAt,
      lastUsedAt: user.phoneLastUsedAt,
      isDefault: byDefault === 'sms' || byDefault === 'voice',
    },
    ...factors.map((factor) => ({
      id: factor.id,
      kind: factor.kind,
      label: factor.label,
      describedAs: FACTOR_KIND_NAMES[factor.kind],
      addedAt: factor.createdAt,
      lastUsedAt: factor.lastUsedAt,
      // Passkeys are one way on the code page, whichever of them answers: each is marked default.
      isDefault: byDefault === factor.kind,
    })),
  ];
}

/**
 * Why removing this factor must be refused, or null. The phone always remains, so a login always
 * keeps a second factor; what removal could break is the secure area, when its step-up takes no
 * phone code (ADMIN_STEP_UP_FACTORS lists none, or no provider delivers the ones it lists) and this
 * is an admin's last factor it does take (the admin would be locked out of the secure area, and
 * might be its only admin). Two removals at the same instant could both pass: README, known limits.
 */
export const LAST_ADMIN_FACTOR_MESSAGE =
  'This is your last passkey or app the secure area accepts: add another one first, or you could not enter the secure area.';

/**
 * The kinds of factor an admin must keep one of: those the secure area accepts, when its step-up
 * takes no phone code the admin could fall back on; undefined when nothing has to be kept.
 */
export function kindsToKeep(
  user: User,
  adminStep: { acceptedKinds: readonly string[]; takesPhoneCodes: boolean },
): Factor['kind'][] | undefined {
  if (!user.isAdmin || adminStep.takesPhoneCodes) return undefined;
  return (['passkey', 'totp'] as const).filter((kind) => adminStep.acceptedKinds.includes(kind));
}

/**
 * Whether the secure area accepts this factor of an admin: its step-up requires user verification,
 * so a passkey made without it (a security key that only asks for a touch) does not count.
 */
export function isAcceptedBySecureArea(factor: Factor, keep: readonly Factor['kind'][]): boolean {
  return keep.includes(factor.kind) && (factor.kind !== 'passkey' || factor.userVerified);
}

export function removalRefusal(
  user: User,
  factors: Factor[],
  removing: Factor,
  adminStep: { acceptedKinds: readonly string[]; takesPhoneCodes: boolean },
): string | null {
  const keep = kindsToKeep(user, adminStep);
  // A factor the secure area does not take can always go: nobody loses the way in with it.
  if (!keep || !isAcceptedBySecureArea(removing, keep)) return null;
  const left = factors.filter((factor) => factor.id !== removing.id && isAcceptedBySecureArea(factor, keep));
  return left.length === 0 ? LAST_ADMIN_FACTOR_MESSAGE : null;
}

/** Which default factors an account can choose: its phone by each channel the site delivers by, and what it has. */
export function defaultChoices(factors: Factor[], channels: Channel[]): DefaultFactor[] {
  return [
    ...(factors.some((factor) => factor.kind === 'passkey') ? (['passkey'] as const) : []),
    ...(factors.some((factor) => factor.kind === 'totp') ? (['totp'] as const) : []),
    ...channels,
  ];
}
