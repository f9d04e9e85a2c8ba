import { Secret, TOTP, URI } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFactorSecrets } from '../../src/factors/secrets.js';
import { createLogger } from '../../src/logger.js';
import type { FactorStore, TotpFactor } from '../../src/factors/store.js';
import { createTotp, normaliseTotpCode, totpSealContext, type Totp } from '../../src/factors/totp.js';
import { createSqlFactorStore } from '../../src/stores/sql/factor-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { User } from '../../src/users/store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { TEST_FACTOR_KEY } from '../helpers/create-test-app.js';
import { openTestSqliteDatabase } from '../helpers/sql.js';

const STEP_MS = 30_000;

/** What the person's app shows at `at` for this secret (otpauth, as a phone app computes it). */
const codeAt = (secretBase32: string, at: Date) =>
  TOTP.generate({ secret: Secret.fromBase32(secretBase32), timestamp: at.getTime() });

/**
 * Authenticator apps (src/factors/totp.ts), on a real SQLite store with the injected clock.
 * Threats: a code seen once (shoulder, phishing proxy, a second tab) used again; two requests
 * racing with one code; a copy of the database read for its secrets; a guessable secret.
 */
describe('authenticator apps (TOTP)', () => {
  let clock: TestClock;
  let totp: Totp;
  let ada: User;
  let bob: User;
  let close: () => Promise<void>;
  let rowsOf: (userId: number) => Promise<Record<string, unknown>[]>;
  let factorStore: FactorStore;
  const secrets = createFactorSecrets(TEST_FACTOR_KEY);

  beforeEach(async () => {
    // At the very start of a time step, so that "one step earlier" is 30 s back, exactly.
    clock = createTestClock(new Date('2026-11-21T10:00:00Z'));
    const sql = await openTestSqliteDatabase();
    close = sql.close;
    const users = createSqlUserStore(sql.database, clock);
    const account = async (username: string) =>
      (await users.create({ username, passwordHash: 'x', phone: '+12025550160', preferredChannel: 'sms' }))!;
    ada = await account('ada');
    bob = await account('bob');
    factorStore = createSqlFactorStore(sql.database, clock);
    totp = createTotp({
      factors: factorStore,
      secrets,
      clock,
      issuer: 'Keyhole',
      logger: createLogger('silent'),
    });
    rowsOf = (userId) =>
      sql.database.db.selectFrom('factors').selectAll().where('user_id', '=', userId).execute();
  });
  afterEach(() => close());

  /** An app enrolled (with the code of the current step); its secret as the person saw it. */
  async function enrol(user: User): Promise<{ secret: string; factor: TotpFactor }> {
    const { secret } = await totp.beginEnrolment(user);
    const confirmed = await totp.confirmEnrolment(user, secret, codeAt(secret, clock.now()), 'Phone');
    if (!confirmed.ok) throw new Error(`enrolment refused: ${confirmed.reason}`);
    return { secret, factor: confirmed.factor };
  }
  const enrolAda = () => enrol(ada);

  describe('beginEnrolment', () => {
    it('makes a fresh 160-bit secret each time, in a standard otpauth:// URI for this site and name', async () => {
      const first = await totp.beginEnrolment(ada);
      const second = await totp.beginEnrolment(ada);
      expect(Secret.fromBase32(first.secret).bytes.length).toBeGreaterThanOrEqual(20);
      expect(first.secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(second.secret).not.toBe(first.secret);

      const parsed = URI.parse(first.uri) as TOTP;
      expect(parsed).toBeInstanceOf(TOTP);
      expect(parsed).toMatchObject({
        issuer: 'Keyhole',
        label: 'ada',
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
      });
      expect(parsed.secret.base32).toBe(first.secret);
    });

    it('draws the QR code as SVG paths only: no script, no style attribute, nothing from elsewhere', async () => {
      const { qrSvg } = await totp.beginEnrolment(ada);
      expect(qrSvg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(qrSvg).toMatch(/<path /);
      const withoutNamespace = qrSvg.replace('xmlns="http://www.w3.org/2000/svg"', '');
      expect(withoutNamespace).not.toMatch(
        /https?:|href|<script|<style|style=|\son[a-z]+=|<image|<foreignObject/i,
      );
    });
  });

  describe('confirmEnrolment', () => {
    it('stores the app, its secret sealed and bound to the account, for a correct code', async () => {
      const { secret, factor } = await enrolAda();
      expect(factor).toMatchObject({ kind: 'totp', userId: ada.id, label: 'Phone', lastUsedAt: null });

      const [row] = await rowsOf(ada.id);
      const stored = String(row!.totp_secret);
      const bytes = Buffer.from(Secret.fromBase32(secret).bytes);
      // A copy of the database holds neither the base32 the person typed nor the raw key.
      expect(stored).not.toContain(secret);
      expect(stored.toUpperCase()).not.toContain(secret.slice(0, 8));
      expect(stored).not.toContain(bytes.toString('hex'));
      expect(stored).not.toContain(bytes.toString('base64url'));
      expect(secrets.open(stored, totpSealContext(ada.id))).toEqual(bytes);
      // Moved to another account's row, it opens nothing.
      expect(() => secrets.open(stored, totpSealContext(bob.id))).toThrow();
    });

    it('refuses a wrong code and stores nothing', async () => {
      const { secret } = await totp.beginEnrolment(ada);
      const right = codeAt(secret, clock.now());
      const wrong = right === '000000' ? '111111' : '000000';
      expect(await totp.confirmEnrolment(ada, secret, wrong, 'Phone')).toEqual({
        ok: false,
        reason: 'wrong_code',
      });
      expect(await totp.confirmEnrolment(ada, secret, 'abcdef', 'Phone')).toEqual({
        ok: false,
        reason: 'wrong_code',
      });
      expect(await rowsOf(ada.id)).toEqual([]);
    });

    it('spends the code that proved the app: it cannot also sign in', async () => {
      const { secret } = await enrolAda();
      expect(await totp.check(ada.id, codeAt(secret, clock.now()))).toEqual({
        ok: false,
        reason: 'replayed',
      });
      clock.advance(STEP_MS);
      expect(await totp.check(ada.id, codeAt(secret, clock.now()))).toMatchObject({ ok: true });
    });

    it('keeps one app per account, even when two enrolments finish at once', async () => {
      await enrolAda();
      const another = await totp.beginEnrolment(ada);
      expect(
        await totp.confirmEnrolment(ada, another.secret, codeAt(another.secret, clock.now()), 'Tablet'),
      ).toEqual({ ok: false, reason: 'already_has_app' });

      const [one, two] = [await totp.beginEnrolment(bob), await totp.beginEnrolment(bob)];
      const outcomes = await Promise.all(
        [one, two].map((begun) =>
          totp.confirmEnrolment(bob, begun.secret, codeAt(begun.secret, clock.now()), 'App'),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
      expect(outcomes.find((outcome) => !outcome.ok)).toEqual({ ok: false, reason: 'already_has_app' });
      expect(await rowsOf(bob.id)).toHaveLength(1);
    });

    it('names the app "Authenticator app" when no name is given', async () => {
      const { secret } = await totp.beginEnrolment(ada);
      const confirmed = await totp.confirmEnrolment(ada, secret, codeAt(secret, clock.now()), '   ');
      expect(confirmed).toMatchObject({ ok: true, factor: { label: 'Authenticator app' } });
    });
  });

  describe('check', () => {
    it('accepts the code of the step before and the step after (a clock a little off), not two away', async () => {
      const { secret } = await enrolAda();
      clock.advance(10 * STEP_MS);
      const now = clock.now().getTime();
      const at = (steps: number) => new Date(now + steps * STEP_MS);
      expect(await totp.check(ada.id, codeAt(secret, at(-2)))).toEqual({ ok: false, reason: 'wrong' });
      expect(await totp.check(ada.id, codeAt(secret, at(2)))).toEqual({ ok: false, reason: 'wrong' });
      expect(await totp.check(ada.id, codeAt(secret, at(-1)))).toMatchObject({ ok: true });
      expect(await totp.check(ada.id, codeAt(secret, at(1)))).toMatchObject({ ok: true });
    });

    it('accepts the code of the step before until the last millisecond of the window', async () => {
      const { secret } = await enrolAda();
      clock.advance(10 * STEP_MS);
      const previous = codeAt(secret, new Date(clock.now().getTime() - STEP_MS));
      clock.advance(STEP_MS - 1);
      expect(await totp.check(ada.id, previous)).toMatchObject({ ok: true });
      const { secret: bobs } = await enrol(bob);
      const stale = codeAt(bobs, new Date(clock.now().getTime() - STEP_MS));
      clock.advance(1);
      // One millisecond later it is two steps old.
      expect(await totp.check(bob.id, stale)).toEqual({ ok: false, reason: 'wrong' });
    });

    it('refuses the same code a second time, and records when the app was used', async () => {
      const { secret, factor } = await enrolAda();
      clock.advance(STEP_MS);
      const code = codeAt(secret, clock.now());
      const first = await totp.check(ada.id, code);
      expect(first).toEqual({
        ok: true,
        factor: { ...factor, lastStep: factor.lastStep! + 1, lastUsedAt: clock.now() },
      });
      clock.advance(5_000);
      expect(await totp.check(ada.id, code)).toEqual({ ok: false, reason: 'replayed' });
    });

    it('refuses an older step’s code once a newer one was accepted, though both are in the window', async () => {
      const { secret } = await enrolAda();
      clock.advance(10 * STEP_MS);
      const older = codeAt(secret, new Date(clock.now().getTime() - STEP_MS));
      expect(await totp.check(ada.id, codeAt(secret, clock.now()))).toMatchObject({ ok: true });
      expect(await totp.check(ada.id, older)).toEqual({ ok: false, reason: 'replayed' });
    });

    it('lets exactly one of many racing checks of the same code through', async () => {
      const { secret } = await enrolAda();
      clock.advance(STEP_MS);
      const code = codeAt(secret, clock.now());
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => totp.check(ada.id, code)));
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
      expect(outcomes.filter((outcome) => !outcome.ok)).toEqual(
        Array.from({ length: 4 }, () => ({ ok: false, reason: 'replayed' })),
      );
    });

    it('takes a code typed with spaces or a dash, refuses anything that is not six digits', async () => {
      const { secret } = await enrolAda();
      clock.advance(STEP_MS);
      const code = codeAt(secret, clock.now());
      for (const typed of [
        '',
        '12345',
        '1234567',
        '12345a',
        '１２３４５x',
        '123.456',
        '+12345',
        `${code}0`,
      ]) {
        expect(await totp.check(ada.id, typed)).toEqual({ ok: false, reason: 'wrong' });
      }
      expect(await totp.check(ada.id, ` ${code.slice(0, 3)}-${code.slice(3)} `)).toMatchObject({ ok: true });
    });

    it('treats an app whose secret will not open (FACTOR_ENCRYPTION_KEY changed) as unusable, and tells the operator once', async () => {
      // Threat to availability: after a key change every app code threw, and every page gave a 500.
      const { secret, factor } = await enrolAda();
      expect(totp.isUsable(factor)).toBe(true);
      const logLines: string[] = [];
      const afterKeyChange = createTotp({
        factors: factorStore,
        secrets: createFactorSecrets(Buffer.alloc(32, 7)),
        clock,
        issuer: 'Keyhole',
        logger: createLogger('error', { write: (line: string) => void logLines.push(line) }),
      });
      expect(afterKeyChange.isUsable(factor)).toBe(false);
      clock.advance(STEP_MS);
      expect(await afterKeyChange.check(ada.id, codeAt(secret, clock.now()))).toEqual({
        ok: false,
        reason: 'unusable',
      });
      expect(logLines).toHaveLength(1);
      expect(JSON.parse(logLines[0]!)).toMatchObject({
        level: 50,
        userId: ada.id,
        factorId: factor.id,
        msg: expect.stringContaining('FACTOR_ENCRYPTION_KEY'),
      });
      expect(logLines[0]).not.toContain(secret);
    });

    it('says when the account has no app, and never checks a code against another account’s', async () => {
      const { secret } = await enrolAda();
      clock.advance(STEP_MS);
      expect(await totp.check(bob.id, codeAt(secret, clock.now()))).toEqual({ ok: false, reason: 'no_app' });
    });
  });

  it('normalises what a person types', () => {
    expect(normaliseTotpCode(' 123 456\n')).toBe('123456');
    expect(normaliseTotpCode('１２３４５６')).toBe('123456');
    expect(normaliseTotpCode('123-456')).toBe('123456');
    expect(normaliseTotpCode('12 34 5')).toBeNull();
    expect(normaliseTotpCode('١٢٣٤٥٦')).toBeNull();
  });
});
