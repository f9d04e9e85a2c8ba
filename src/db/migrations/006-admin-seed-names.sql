-- Each name the first time it appeared in ADMIN_USERNAMES, with the newest account id then: an
-- account made after that (a higher id) is never made an admin by the list, since anyone could
-- have registered the name in between. Ids, unlike clocks, never step back.
CREATE TABLE admin_seed_names (
  name TEXT PRIMARY KEY,
  first_listed_at INTEGER NOT NULL,
  last_user_id_then INTEGER NOT NULL
);
