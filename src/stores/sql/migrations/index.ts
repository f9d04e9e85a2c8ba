import type { Migration } from '../migrate.js';
import { initial } from './001-initial.js';
import { adminRole } from './002-admin-role.js';
import { sessionTombstones } from './003-session-tombstones.js';
import { fraudGuard } from './004-fraud-guard.js';
import { challenges } from './005-challenges.js';
import { adminSeedNames } from './006-admin-seed-names.js';
import { usernameKeys } from './007-username-keys.js';
import { challengeOrder } from './008-challenge-order.js';
import { fraudVerifiedAccounts } from './010-fraud-verified-accounts.js';
import { provenPhones } from './011-proven-phones.js';
import { emailAndTokens } from './012-email-and-tokens.js';
import { accountSessions } from './013-account-sessions.js';
import { accountDeletion } from './014-account-deletion.js';
import { factors } from './015-factors.js';
import { apiKeys } from './016-api-keys.js';
import { apiVerifications } from './017-api-verifications.js';

/** Every migration, in the order they are applied; a new one is a file here and a line below. */
export const MIGRATIONS: readonly Migration[] = [
  initial,
  adminRole,
  sessionTombstones,
  fraudGuard,
  challenges,
  adminSeedNames,
  usernameKeys,
  challengeOrder,
  fraudVerifiedAccounts,
  provenPhones,
  emailAndTokens,
  accountSessions,
  accountDeletion,
  factors,
  apiKeys,
  apiVerifications,
];
