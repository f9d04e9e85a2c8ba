/**
 * When two usernames are the same account. "Alice", "alice" and "ａｌｉｃｅ" (full-width) are one
 * account: otherwise a stranger could register a look-alike of an admin's name, and a person who
 * typed their name in another case or on a phone keyboard would be told it does not exist.
 *
 * The rule lives here, in code, and its result is stored in the users table's `username_key`
 * column under a unique index: the same in SQLite and PostgreSQL, whatever their collations say.
 * Registration, login, the admin command and ADMIN_USERNAMES all go through this one function.
 *
 * NFKC folds compatibility forms (full-width letters, ligatures, superscripts); then case folding.
 * JavaScript has no full case folding, so lower, upper, lower approximates it: "ß", "ẞ" and "SS"
 * all end as "ss", and the three Greek sigmas as one. NFKC again afterwards, because a case
 * mapping can undo a normal form. Changing this function means a migration that recomputes every
 * username_key (as 007-username-keys did).
 */
export function usernameKeyOf(username: string): string {
  return username.normalize('NFKC').trim().toLowerCase().toUpperCase().toLowerCase().normalize('NFKC');
}

/** A username as registration stores it and pages show it: NFKC, trimmed, its case kept. */
export function normaliseUsername(username: string): string {
  return username.normalize('NFKC').trim();
}
