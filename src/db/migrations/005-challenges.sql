-- One row per code sent: the session holds only its id, so every request (and, later, every
-- instance) reads the same attempts and the same open/closed state.
CREATE TABLE challenges (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  scope TEXT NOT NULL,
  phone_e164 TEXT NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('sms', 'voice')),
  provider TEXT NOT NULL,
  handle TEXT,
  sent_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  wrong_attempts INTEGER NOT NULL DEFAULT 0,
  closed_at INTEGER,
  close_reason TEXT
);
CREATE INDEX challenges_user_scope ON challenges (user_id, scope, sent_at DESC);
CREATE INDEX challenges_expires_at ON challenges (expires_at);
