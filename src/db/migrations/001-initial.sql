CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  phone_e164 TEXT NOT NULL,
  preferred_channel TEXT NOT NULL CHECK (preferred_channel IN ('sms', 'voice')),
  created_at INTEGER NOT NULL,
  last_login_at INTEGER
);

CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  type TEXT NOT NULL,
  user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
  username TEXT,
  ip TEXT,
  detail TEXT
);
CREATE INDEX audit_events_at ON audit_events (at DESC);

-- Codes the app makes itself (console, SignalWire): only a keyed hash is kept.
CREATE TABLE issued_codes (
  id TEXT PRIMARY KEY,
  phone_e164 TEXT NOT NULL,
  scope TEXT NOT NULL,
  code_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  voided_at INTEGER
);
CREATE INDEX issued_codes_expires_at ON issued_codes (expires_at);

CREATE TABLE sessions (
  sid TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
