-- Which accounts have completed a code to which number. An account that has gets its own
-- per-number allowance, so strangers' accounts registered with the same number cannot use it up
-- (they share the number's common one), and with Twilio it may cancel a code such an account
-- left pending. Numbered 010 so it cannot collide with the Kysely migrations starting at 007.
CREATE TABLE verified_number_accounts (
  phone_e164 TEXT NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  first_verified_at INTEGER NOT NULL,
  last_verified_at INTEGER NOT NULL,
  PRIMARY KEY (phone_e164, user_id)
);

-- Codes accepted before this table existed, as far as the challenges still kept tell.
INSERT OR IGNORE INTO verified_number_accounts (phone_e164, user_id, first_verified_at, last_verified_at)
  SELECT phone_e164, user_id, MIN(closed_at), MAX(closed_at) FROM challenges
  WHERE close_reason = 'accepted' AND closed_at IS NOT NULL
  GROUP BY phone_e164, user_id;

-- The breaker's history now counts numbers verified per day ('verified_number'), not codes: one
-- number verified again and again must not raise it. The codes counted so far carry over as an
-- upper bound, so thresholds do not drop to the floor on upgrade; they age out within 15 days.
INSERT OR IGNORE INTO sending_hourly (country, event, hour, count)
  SELECT country, 'verified_number', hour, count FROM sending_hourly WHERE event = 'verified';
