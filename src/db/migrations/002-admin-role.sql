-- Admin rights belong to an account, granted by the operator (npm run admin -- grant USERNAME) or
-- seeded at start from ADMIN_USERNAMES for accounts that already exist; never to a name that
-- whoever registers first would inherit.
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
