-- When each name first appeared in ADMIN_USERNAMES: an account registered after that moment is
-- never made an admin by the list (anyone could have registered the name in between).
CREATE TABLE admin_seed_names (
  name TEXT PRIMARY KEY,
  first_listed_at INTEGER NOT NULL
);
