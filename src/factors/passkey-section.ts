import { MAX_PASSKEYS_PER_ACCOUNT } from './passkeys.js';
import type { FactorStore } from './store.js';

/** The passkeys part of /account/security (views/account/security-passkeys.ejs). */
export interface PasskeySummary {
  id: number;
  label: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface PasskeySectionData {
  passkeys: PasskeySummary[];
  /** False at MAX_PASSKEYS_PER_ACCOUNT: the page says to remove one first. */
  canAdd: boolean;
  max: number;
}

export interface PasskeySection {
  forUser(userId: number): Promise<PasskeySectionData>;
}

export function createPasskeySection(factors: FactorStore): PasskeySection {
  return {
    async forUser(userId) {
      const passkeys = (await factors.listForUser(userId))
        .filter((factor) => factor.kind === 'passkey')
        .map(({ id, label, createdAt, lastUsedAt }) => ({ id, label, createdAt, lastUsedAt }));
      return { passkeys, canAdd: passkeys.length < MAX_PASSKEYS_PER_ACCOUNT, max: MAX_PASSKEYS_PER_ACCOUNT };
    },
  };
}
