-- Numbers that completed a code: they still get codes when the daily budget is spent or their
-- country's conversion breaker has paused new numbers.
CREATE TABLE verified_numbers (
  phone_e164 TEXT PRIMARY KEY,
  first_verified_at INTEGER NOT NULL,
  last_verified_at INTEGER NOT NULL
);

-- What was sent, verified, refused (or, in record mode, flagged) per country and UTC hour: the
-- operator's "Sending" view and the 14-day high of verified codes the breaker scales with.
-- Rows older than 15 days are swept.
CREATE TABLE sending_hourly (
  country TEXT NOT NULL,
  event TEXT NOT NULL,
  hour INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (country, event, hour)
);
CREATE INDEX sending_hourly_hour ON sending_hourly (hour);

-- Wrong codes in a row per account, across every window (NIST SP 800-63B's ceiling of 100):
-- at the ceiling, code entry is suspended until an admin unlocks it.
CREATE TABLE code_entry_failures (
  user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  consecutive INTEGER NOT NULL DEFAULT 0,
  suspended_at INTEGER
);
