import { describe, expect, it } from 'vitest';
import { normaliseUsername, usernameKeyOf } from '../../src/users/username.js';

describe('when two usernames are one account (usernameKeyOf)', () => {
  it.each([
    ['Alice', 'alice'],
    ['ａｌｉｃｅ', 'alice'], // full-width, as a phone keyboard in CJK mode types it
    ['  ALICE ', 'alice'],
    ['straße', 'strasse'],
    ['STRASSE', 'strasse'],
    ['ẞ', 'ss'],
    ['ﬁsh', 'fish'], // a ligature
    ['ΟΔΟΣ', 'οδος'],
    ['οδοσ', 'οδος'], // a medial sigma at the end folds as the final one does
  ])('files %j under %j', (typed, key) => {
    expect(usernameKeyOf(typed)).toBe(key);
  });

  it('keeps letters of other scripts that merely look alike apart', () => {
    // Cyrillic "а" (U+0430) is not Latin "a": NFKC and case folding leave it, as they should.
    expect(usernameKeyOf('аlice')).not.toBe(usernameKeyOf('alice'));
  });

  it('gives the same key whatever form of a name it starts from', () => {
    for (const name of ['Alice', 'ＡＬＩＣＥ', 'straße', 'İstanbul', 'ΣΊΣΥΦΟΣ', 'ǅemal']) {
      expect(usernameKeyOf(usernameKeyOf(name))).toBe(usernameKeyOf(name));
      expect(usernameKeyOf(name.toUpperCase())).toBe(usernameKeyOf(name));
    }
  });
});

describe('how a username is shown (normaliseUsername)', () => {
  it('keeps its case, and folds only compatibility forms and surrounding spaces', () => {
    expect(normaliseUsername('  Ａｌｉｃｅ ')).toBe('Alice');
  });
});
