-- A destroyed session id (logout, or replaced by a new id) is remembered until that session's own
-- expiry, so that a request still in flight with the old id can never write it back.
CREATE TABLE session_tombstones (
  sid TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX session_tombstones_expires_at ON session_tombstones (expires_at);
