import { generateApiKey, type ApiKey, type ApiKeyStore } from '../api/keys.js';
import type { AuditLog } from '../audit/log.js';
import type { Channel } from '../mfa/provider.js';
import type { User } from '../users/store.js';

/**
 * What an admin does with the verification API's keys (issue 13), apart from the pages: make one,
 * revoke one, and leave a line in the audit log for each. The key itself is in the caller's hands
 * once, in `create`'s answer; the store and the audit log see only its digest and its hint.
 */
export interface ApiKeyManagement {
  create(request: { name: string; channels: Channel[]; admin: User; ip?: string }): Promise<NewlyMadeKey>;
  revoke(request: { key: ApiKey; admin: User; ip?: string }): Promise<'revoked' | 'already_revoked'>;
}

export interface NewlyMadeKey {
  /** The key itself: shown to the admin on the one page, then gone. */
  key: string;
  apiKey: ApiKey;
}

export interface ApiKeyManagementDeps {
  apiKeys: Pick<ApiKeyStore, 'create' | 'revoke'>;
  audit: AuditLog;
  /** `kh_live_` keys in production, `kh_test_` elsewhere. */
  isProduction: boolean;
}

/** How a key is named in the audit log and in messages: its name and hint, never more of it. */
export function describeApiKey(key: Pick<ApiKey, 'name' | 'hint'>): string {
  return `“${key.name}” (${key.hint}…)`;
}

export function createApiKeyManagement(deps: ApiKeyManagementDeps): ApiKeyManagement {
  const { apiKeys, audit } = deps;
  return {
    async create({ name, channels, admin, ip }) {
      const { key, keyHash, hint } = generateApiKey(deps.isProduction);
      const apiKey = await apiKeys.create({ name, keyHash, hint, channels, createdBy: admin.id });
      await audit.record({
        type: 'api_key_created',
        userId: admin.id,
        username: admin.username,
        ip: ip ?? null,
        detail: `${describeApiKey(apiKey)} for ${apiKey.channels.join(', ')}`,
      });
      return { key, apiKey };
    },

    async revoke({ key, admin, ip }) {
      // Of two admins revoking at once, the store tells one of them it was them: only that one
      // leaves an audit line, the other is told the key was already revoked.
      if (!(await apiKeys.revoke(key.id))) return 'already_revoked';
      await audit.record({
        type: 'api_key_revoked',
        userId: admin.id,
        username: admin.username,
        ip: ip ?? null,
        detail: describeApiKey(key),
      });
      return 'revoked';
    },
  };
}
