import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RECOVERY_CODE_ALPHABET,
  RECOVERY_CODE_LENGTH,
  createRecoveryCodes,
  formatRecoveryCode,
  normaliseRecoveryCode,
  shouldOfferRecoveryCodes,
  type RecoveryCodes,
} from '../../src/factors/recovery-codes.js';
import { createFactorSecrets } from '../../src/factors/secrets.js';
import { createSqlRecoveryCodeStore } from '../../src/stores/sql/recovery-code-store.js';
import type { TestClock } from '../helpers/clock.js';
import { openSqlStorePair, sqlBackends } from '../helpers/sql.js';

const secrets = createFactorSecrets(Buffer.alloc(32, 9));
const CODE = new RegExp(`^([${RECOVERY_CODE_ALPHABET}]{4}-){3}[${RECOVERY_CODE_ALPHABET}]{4}$`);

describe('the shape of a recovery code', () => {
  it('draws 16 characters from a 32-letter alphabet without I, L, O or U: 80 random bits', () => {
    expect(new Set(RECOVERY_CODE_ALPHABET).size).toBe(32);
    expect(RECOVERY_CODE_ALPHABET).not.toMatch(/[ILOU]/);
    expect(RECOVERY_CODE_LENGTH * Math.log2(RECOVERY_CODE_ALPHABET.length)).toBe(80);
  });

  it('reads a code however it is typed: case, spaces, dashes, O for 0, I and L for 1', () => {
    expect(normaliseRecoveryCode('ABCD-EFGH-JKMN-PQRS')).toBe('ABCDEFGHJKMNPQRS');
    expect(normaliseRecoveryCode(' abcd efgh\tjkmn-pqrs ')).toBe('ABCDEFGHJKMNPQRS');
    expect(normaliseRecoveryCode('OOII-LLoo-il01-2345')).toBe('0011110011012345');
    // A phone keyboard's full-width letters and a typographic dash.
    expect(normaliseRecoveryCode('ＡＢＣＤ‐EFGH–JKMN-PQRS')).toBe('ABCDEFGHJKMNPQRS');
  });

  it('refuses what cannot be a code', () => {
    for (const input of [
      '',
      'ABCD-EFGH-JKMN-PQR',
      'ABCD-EFGH-JKMN-PQRST',
      'ABCD-EFGH-JKMN-PQRU',
      'ABCD_EFGH_JKMN_PQRS',
      '123456',
      `${'A'.repeat(16)}${' '.repeat(60)}`,
    ]) {
      expect(normaliseRecoveryCode(input), input).toBeNull();
    }
  });

  it('shows a code as four groups of four', () => {
    expect(formatRecoveryCode('ABCDEFGHJKMNPQRS')).toBe('ABCD-EFGH-JKMN-PQRS');
  });
});

describe('the offer after a login', () => {
  const fresh = { recoveryCodesOfferedAt: null, twoFactorOffAt: null };
  it('is made to an account with no codes that has not answered it, with the second step on', () => {
    expect(shouldOfferRecoveryCodes(fresh, { total: 0 })).toBe(true);
    expect(shouldOfferRecoveryCodes(fresh, { total: 10 })).toBe(false);
    expect(shouldOfferRecoveryCodes({ ...fresh, recoveryCodesOfferedAt: new Date() }, { total: 0 })).toBe(
      false,
    );
    expect(shouldOfferRecoveryCodes({ ...fresh, twoFactorOffAt: new Date() }, { total: 0 })).toBe(false);
  });
});

for (const backend of sqlBackends()) {
  describe.skipIf(backend.skip)(`recovery codes (${backend.name})`, () => {
    let pair: Awaited<ReturnType<typeof openSqlStorePair<ReturnType<typeof createSqlRecoveryCodeStore>>>>;
    let codes: RecoveryCodes;
    /** The same codes seen by a second instance (its own connection). */
    let peer: RecoveryCodes;
    let clock: TestClock;
    let ada: number;

    beforeEach(async () => {
      pair = await openSqlStorePair(backend, (database, testClock) =>
        createSqlRecoveryCodeStore(database, testClock),
      );
      clock = pair.clock;
      codes = createRecoveryCodes({ store: pair.store, secrets, clock });
      peer = createRecoveryCodes({ store: pair.peer, secrets, clock });
      ada = await pair.addAccount();
    });
    afterEach(() => pair.close());

    it('makes 10 distinct codes of the alphabet, grouped, and stores their digests', async () => {
      const made = await codes.generate(ada);
      expect(made).toHaveLength(10);
      for (const code of made) expect(code).toMatch(CODE);
      expect(new Set(made).size).toBe(10);
      expect(await codes.status(ada)).toEqual({ total: 10, left: 10, createdAt: clock.now() });
      // Stored by its keyed digest, not as itself.
      const normalised = normaliseRecoveryCode(made[0]!)!;
      expect(await pair.store.spend(ada, normalised, clock.now())).toBe(false);
      expect(await pair.store.spend(ada, secrets.recoveryCodeDigest(ada, normalised), clock.now())).toBe(
        true,
      );
    });

    it('uses every letter of the alphabet (the codes are not drawn from part of it)', async () => {
      const seen = new Set<string>();
      for (let round = 0; round < 20; round += 1) {
        for (const code of await codes.generate(ada))
          for (const letter of code.replace(/-/g, '')) seen.add(letter);
      }
      expect([...seen].sort().join('')).toBe(RECOVERY_CODE_ALPHABET);
    });

    it('lets each code in once, typed any way, and says how many are left', async () => {
      const [first, second] = await codes.generate(ada);
      expect(await codes.use(ada, first!)).toEqual({ ok: true, left: 9 });
      expect(await peer.use(ada, first!)).toEqual({ ok: false });
      expect(await codes.use(ada, first!.toLowerCase().replace(/-/g, ' '))).toEqual({ ok: false });
      expect(await peer.use(ada, ` ${second!.toLowerCase()} `)).toEqual({ ok: true, left: 8 });
      expect(await codes.remaining(ada)).toBe(8);
      expect(await codes.status(ada)).toEqual({ total: 10, left: 8, createdAt: clock.now() });
    });

    it('refuses a code of another account, and anything that is not a code', async () => {
      const ben = await pair.addAccount();
      const [bens] = await codes.generate(ben);
      await codes.generate(ada);
      expect(await codes.use(ada, bens!)).toEqual({ ok: false });
      expect(await codes.use(ada, 'not a code')).toEqual({ ok: false });
      expect(await codes.use(ada, '')).toEqual({ ok: false });
      expect(await codes.remaining(ada)).toBe(10);
      expect(await codes.remaining(ben)).toBe(10);
    });

    it('voids the whole old set when a new one is made', async () => {
      const old = await codes.generate(ada);
      await codes.use(ada, old[0]!);
      clock.advanceMinutes(5);
      const made = await peer.generate(ada);
      expect(made.filter((code) => old.includes(code))).toEqual([]);
      for (const code of old) expect(await codes.use(ada, code)).toEqual({ ok: false });
      expect(await codes.status(ada)).toEqual({ total: 10, left: 10, createdAt: clock.now() });
    });

    it('makes a first set only when the account has none (the offer after a login)', async () => {
      const first = await codes.generateFirstSet(ada);
      expect(first).toHaveLength(10);
      expect(await peer.generateFirstSet(ada)).toBeNull();
      for (const code of first!) await codes.use(ada, code);
      // Used up is still a set: the offer does not make another; the person makes one in settings.
      expect(await codes.generateFirstSet(ada)).toBeNull();
      expect(await codes.status(ada)).toEqual({ total: 10, left: 0, createdAt: clock.now() });
    });

    it('says an account without codes has none', async () => {
      expect(await codes.status(ada)).toEqual({ total: 0, left: 0, createdAt: null });
      expect(await codes.remaining(ada)).toBe(0);
      expect(await codes.use(ada, 'ABCD-EFGH-JKMN-PQRS')).toEqual({ ok: false });
    });

    for (const racers of [2, 10]) {
      it(`lets exactly one of ${racers} parallel uses of one code through`, async () => {
        // Threat: a code seen over a shoulder or in a stolen file, replayed in parallel requests
        // (to one instance or several) to get in more than once.
        const [code] = await codes.generate(ada);
        const uses = await Promise.all(
          Array.from({ length: racers }, (_, index) => (index % 2 ? peer : codes).use(ada, code!)),
        );
        expect(uses.filter((use) => use.ok)).toEqual([{ ok: true, left: 9 }]);
        expect(await codes.remaining(ada)).toBe(9);
      });
    }
  });
}
