import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type VerifyOutcome } from '../../src/mfa/provider.js';
import { wrongFor } from '../helpers/flows.js';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/create-test-app.js';
import {
  consoleCodeTo,
  consoleMessagesTo,
  createApiClient,
  createGatedConsole,
  createTestApiKey,
  expectApiProblem,
  type ApiClient,
  type TestApiKey,
} from '../helpers/api.js';

const ALICE = '+12025550100';
const BOB = '+12025550101';
const CODE_TTL_MS = 5 * 60_000;

describe('the verification API with the console provider', () => {
  let site: TestApp;
  let owner: TestApiKey;
  let api: ApiClient;
  let logLines: string[];

  async function start(options: TestAppOptions = {}) {
    logLines = [];
    site = await createTestApp({ logLines, ...options });
    owner = await createTestApiKey(site, { name: 'checkout app' });
    api = createApiClient(site.app, owner.key);
  }
  beforeEach(() => start());
  afterEach(() => site.close());

  /** A new verification (201), and the code the phone got. */
  async function sendTo(to: string, fields: Record<string, unknown> = {}, client = api) {
    const res = await client.send({ to, ...fields });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.id as string, code: consoleCodeTo(site, to), res };
  }
  const status = (id: string, client = api) => client.get(`/api/v1/verifications/${id}`);

  describe('POST /api/v1/verifications', () => {
    it('sends a code by text message and answers the verification, its number masked', async () => {
      const { id, res } = await sendTo(ALICE, { label: 'Checkout' });

      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers.location).toBe(`/api/v1/verifications/${id}`);
      expect(id).toMatch(/^ver_[A-Za-z0-9_-]{22}$/);
      expect(res.body).toEqual({
        id,
        to: '•••• 0100',
        channel: 'sms',
        label: 'checkout',
        status: 'pending',
        expiresAt: new Date(site.clock.now().getTime() + CODE_TTL_MS).toISOString(),
        attemptsLeft: 5,
      });
      expect((await status(id)).body.createdAt).toBe(site.clock.now().toISOString());
      expect(res.text).not.toContain(ALICE);
      const [message] = site.outbox.list();
      expect(message).toMatchObject({ channel: 'sms', to: ALICE });
      // For another service: not worded as one of the site's codes, and no line binding it to the site.
      expect(message!.text).toMatch(
        /^Your verification code: \d{6}\n\nSent by Keyhole for another service\. Do not share it\.$/,
      );
    });

    it('calls when asked for a voice code, and takes the default label', async () => {
      const { res } = await sendTo(ALICE, { channel: 'voice' });
      expect(res.body).toMatchObject({ channel: 'voice', label: 'default' });
      expect(site.outbox.list()[0]!.text).toMatch(
        /^Your verification code, from Keyhole for another service, is( \d){6}$/,
      );
    });

    it('never writes the caller’s label into the message', async () => {
      // Threat: a caller writing its own words ("your bank says...") into a text the site sends.
      await sendTo(ALICE, { label: 'bank-security.call-now' });
      const [message] = site.outbox.list();
      expect(message!.text).not.toMatch(/bank|call-now/);
    });

    it('records the send in the audit log under the key’s name, without the number or code', async () => {
      const { code } = await sendTo(ALICE, { label: 'checkout' });
      const [event] = await site.audit.recent(1);
      expect(event).toMatchObject({
        type: 'api_code_sent',
        userId: null,
        username: 'api:checkout app',
        detail: 'checkout: •••• 0100 by text message via console',
      });
      expect(JSON.stringify(await site.audit.recent())).not.toContain(code);
    });

    it('voids the key’s older pending code to the number under the same label, and only that one', async () => {
      const older = await sendTo(ALICE, { label: 'checkout' });
      const otherLabel = await sendTo(ALICE, { label: 'login' });
      site.clock.advance(31_000);
      const newer = await sendTo(ALICE, { label: 'checkout' });

      expect((await status(older.id)).body.status).toBe('canceled');
      const refused = await api.check(older.id, older.code);
      expect(expectApiProblem(refused, 409, 'verification-closed').verificationStatus).toBe('canceled');
      expect((await api.check(newer.id, newer.code)).body.status).toBe('approved');
      expect((await api.check(otherLabel.id, otherLabel.code)).body.status).toBe('approved');
    });
  });

  describe('POST /api/v1/verifications/{id}/check', () => {
    it('approves the right code once; a second check hears it is closed (409)', async () => {
      const { id, code } = await sendTo(ALICE);
      const approved = await api.check(id, code);
      expect(approved.status).toBe(200);
      expect(approved.body).toEqual({ id, status: 'approved', attemptsLeft: 0 });

      const again = await api.check(id, code);
      const problem = expectApiProblem(again, 409, 'verification-closed');
      expect(problem.verificationStatus).toBe('approved');
      expect(problem.status).toBe(409);
      expect((await status(id)).body).toMatchObject({ status: 'approved', attemptsLeft: 0 });

      const events = await site.audit.recent(1);
      expect(events[0]).toMatchObject({
        type: 'api_code_checked',
        username: 'api:checkout app',
        detail: 'approved; default: •••• 0100 by text message',
      });
    });

    it('counts wrong codes against the code’s five attempts, then answers max_attempts', async () => {
      const { id, code } = await sendTo(ALICE);
      for (let left = 4; left >= 1; left -= 1) {
        const wrong = await api.check(id, wrongFor(code));
        expect(wrong.status).toBe(200);
        expect(wrong.body).toEqual({ id, status: 'pending', attemptsLeft: left });
      }
      expect((await api.check(id, wrongFor(code))).body).toEqual({
        id,
        status: 'max_attempts',
        attemptsLeft: 0,
      });
      const right = await api.check(id, code);
      expect(expectApiProblem(right, 409, 'verification-closed').verificationStatus).toBe('max_attempts');
    });

    it('answers expired the first time a code past the site’s lifetime is checked, 409 after', async () => {
      const { id, code } = await sendTo(ALICE);
      site.clock.advance(CODE_TTL_MS);
      expect((await status(id)).body).toMatchObject({ status: 'expired', attemptsLeft: 0 });

      expect((await api.check(id, code)).body).toEqual({ id, status: 'expired', attemptsLeft: 0 });
      const again = await api.check(id, code);
      expect(expectApiProblem(again, 409, 'verification-closed').verificationStatus).toBe('expired');
    });

    it('approves exactly one of two checks with the right code at once; the other hears 409', async () => {
      // Threat: one code accepted twice (two instances of the caller, a retried request), or the
      // provider's answer to the second (the code already used) read as a wrong code.
      await site.close();
      const slow = createGatedConsole();
      await start({ providers: slow.pool });
      slow.bind(site);
      slow.checkDelayMs = 100;
      const { id, code } = await sendTo(ALICE);
      const answers = await Promise.all([api.check(id, code), api.check(id, code)]);
      const statuses = answers.map((res) => res.status).sort();
      expect(statuses).toEqual([200, 409]);
      expect(answers.find((res) => res.status === 200)!.body.status).toBe('approved');
      // Told the other check is being answered, or, if it came after, that it was approved.
      const loser = answers.find((res) => res.status === 409)!;
      expect(['urn:keyhole:problem:check-in-progress', 'urn:keyhole:problem:verification-closed']).toContain(
        loser.body.type,
      );
      const again = await api.check(id, code);
      expect(expectApiProblem(again, 409, 'verification-closed').verificationStatus).toBe('approved');
    });

    it('answers a check that comes while another is being answered at once: 409 check-in-progress', async () => {
      // Threat: checks waiting on each other by polling (a write every few milliseconds each),
      // and a stuck check keeping every other waiting for 30 seconds.
      await site.close();
      const slow = createGatedConsole();
      await start({ providers: slow.pool });
      slow.bind(site);
      const { id, code } = await sendTo(ALICE);
      slow.checkDelayMs = 1_000;
      const first = api.check(id, wrongFor(code));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const startedAt = Date.now();
      const busy = await api.check(id, code);
      expect(Date.now() - startedAt).toBeLessThan(500);
      const problem = expectApiProblem(busy, 409, 'check-in-progress');
      expect(problem.detail).toMatch(/Retry in a moment/);
      expect(busy.headers['retry-after']).toBe('1');
      expect((await first).body).toEqual({ id, status: 'pending', attemptsLeft: 4 });

      // The busy answer used no attempt; the retry is checked.
      slow.checkDelayMs = 0;
      const retried = await api.check(id, code);
      expect(retried.body).toEqual({ id, status: 'approved', attemptsLeft: 0 });
    });

    it('frees the verification when a check fails halfway, and takes over a hold left by a stopped instance', async () => {
      const { id, code } = await sendTo(ALICE);
      // An instance that stopped mid-check: its hold stays until it runs out (30 seconds).
      const heldUntil = site.clock.now().getTime() + 30_000;
      expect(await site.stores.apiVerifications.reserveAttempt(id, 5, heldUntil)).toBe(1);
      expectApiProblem(await api.check(id, code), 409, 'check-in-progress');
      site.clock.advance(30_000);
      expect((await api.check(id, code)).body).toEqual({ id, status: 'approved', attemptsLeft: 0 });

      // A check that fails after the provider answered (its store write fails) frees it at once.
      const second = await sendTo(BOB);
      const store = site.stores.apiVerifications;
      const close = store.close.bind(store);
      store.close = async () => {
        throw new TypeError('a bug in the middle of a check');
      };
      try {
        expectApiProblem(await api.check(second.id, second.code), 500, 'internal');
      } finally {
        store.close = close;
      }
      // Checked, not told another check is in progress (the console took its code with the first).
      expect((await api.check(second.id, second.code)).body).toEqual({
        id: second.id,
        status: 'pending',
        attemptsLeft: 3,
      });
    });

    it('stops a key guessing at a number across new verifications: 10 wrong codes, then 429', async () => {
      // Threat: opening verification after verification to guess without end.
      const first = await sendTo(ALICE, { label: 'one' });
      const second = await sendTo(ALICE, { label: 'two' });
      for (let i = 0; i < 5; i += 1) await api.check(first.id, wrongFor(first.code));
      for (let i = 0; i < 5; i += 1) await api.check(second.id, wrongFor(second.code));
      const third = await sendTo(ALICE, { label: 'three' });

      expect((await site.audit.recent(2)).map((event) => event.type)).toContain('code_lockout');
      const refused = await api.check(third.id, third.code);
      expectApiProblem(refused, 429, 'too-many-requests');
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(15 * 60);
      // Another number of the same key, and the same number for another key, are not held back.
      const other = await sendTo(BOB);
      expect((await api.check(other.id, other.code)).body.status).toBe('approved');
      site.clock.advance(15 * 60_000);
      const later = await sendTo(ALICE, { label: 'three' });
      expect((await api.check(later.id, later.code)).body.status).toBe('approved');
    });

    describe('a check the provider answers after the window of wrong codes ended', () => {
      // Threat: a wrong code counted just before the key's window for the number ends, and handed
      // back (the provider failed, or said the code expired) after the next window opened, came
      // off the new window's count: a free guess there for every boundary a slow check crossed.
      const FAILURE_WINDOW_MS = 15 * 60_000;
      it.each<[string, VerifyOutcome | Error, number]>([
        ['fails', new ProviderError('unavailable', 'console', 'no answer'), 503],
        ['says the code expired', 'expired', 200],
      ])(
        'when it %s, the new window keeps every wrong code: the tenth there brings 429',
        async (_, answer, status) => {
          await site.close();
          const slow = createGatedConsole();
          await start({ providers: slow.pool });
          slow.bind(site);
          // A wrong code opens the window; a second check is counted in it one second before it ends.
          const opening = await sendTo(ALICE, { label: 'one' });
          await api.check(opening.id, wrongFor(opening.code));
          site.clock.advance(FAILURE_WINDOW_MS - 1_000);
          const late = await sendTo(ALICE, { label: 'two' });
          const held = slow.holdNextCheck();
          const hanging = api.check(late.id, wrongFor(late.code));
          await held.reached;

          // The provider answers two seconds later, after a wrong code opened the next window.
          site.clock.advance(2_000);
          const next = await sendTo(ALICE, { label: 'three' });
          expect((await api.check(next.id, wrongFor(next.code))).body.attemptsLeft).toBe(4);
          held.answer(answer);
          expect((await hanging).status).toBe(status);

          // Nine more wrong codes make ten in this window, the one made while the check hung among them.
          for (let i = 0; i < 4; i += 1) await api.check(next.id, wrongFor(next.code));
          const fourth = await sendTo(ALICE, { label: 'four' });
          for (let i = 0; i < 5; i += 1) await api.check(fourth.id, wrongFor(fourth.code));
          const fifth = await sendTo(ALICE, { label: 'five' });
          expectApiProblem(await api.check(fifth.id, fifth.code), 429, 'too-many-requests');
        },
      );
    });

    it('refuses a code that is not digits of the site’s length before asking anyone (422)', async () => {
      const { id } = await sendTo(ALICE);
      for (const code of ['12345', '1234567', '12a456', ' 123456']) {
        const res = await api.check(id, code);
        expect(expectApiProblem(res, 422, 'invalid-request').errors).toEqual([
          { field: 'code', message: 'A code is 6 digits.' },
        ]);
      }
      expect((await status(id)).body.attemptsLeft).toBe(5);
    });
  });

  describe('limits on sending', () => {
    it('waits 30 seconds between codes to a number under one label (429 with Retry-After)', async () => {
      await sendTo(ALICE, { label: 'checkout' });
      site.clock.advance(10_000);
      const refused = await api.send({ to: ALICE, label: 'checkout' });
      const problem = expectApiProblem(refused, 429, 'too-many-requests');
      expect(problem.retryAfterSeconds).toBe(20);
      expect(consoleMessagesTo(site, ALICE)).toBe(1);
      // Another label, or the wait over, sends.
      await sendTo(ALICE, { label: 'login' });
      site.clock.advance(20_000);
      await sendTo(ALICE, { label: 'checkout' });
    });

    it('sends a key at most five codes to one number in 15 minutes', async () => {
      for (let i = 0; i < 5; i += 1) await sendTo(ALICE, { label: `label-${i}` });
      const refused = await api.send({ to: ALICE, label: 'label-5' });
      expectApiProblem(refused, 429, 'too-many-requests');
      expect(consoleMessagesTo(site, ALICE)).toBe(5);
      // Another key has its own count for the number.
      const other = await createTestApiKey(site, { name: 'other app' });
      await sendTo(ALICE, {}, createApiClient(site.app, other.key));
    });

    it('holds a key to API_KEY_SENDS_PER_HOUR codes an hour, whatever the numbers', async () => {
      await site.close();
      await start({ env: { API_KEY_SENDS_PER_HOUR: '2' } });
      await sendTo(ALICE);
      await sendTo(BOB);
      const refused = await api.send({ to: '+12025550102' });
      expect(expectApiProblem(refused, 429, 'too-many-requests').retryAfterSeconds).toBe(3600);
      expect(consoleMessagesTo(site, '+12025550102')).toBe(0);

      const other = await createTestApiKey(site, { name: 'other app' });
      await sendTo('+12025550102', {}, createApiClient(site.app, other.key));
      site.clock.advance(60 * 60_000);
      await sendTo('+12025550103');
    });

    it('refuses a channel the key may not use (403), and sends nothing', async () => {
      const smsOnly = await createTestApiKey(site, { name: 'sms only', channels: ['sms'] });
      const res = await createApiClient(site.app, smsOnly.key).send({ to: ALICE, channel: 'voice' });
      expectApiProblem(res, 403, 'channel-not-allowed');
      expect(site.outbox.list()).toEqual([]);
    });
  });

  describe('keys', () => {
    it('shows another key’s verification to no one but that key (404, as for no such id)', async () => {
      // Threat: a caller reading, checking or cancelling another application's verifications.
      const { id, code } = await sendTo(ALICE);
      const other = await createTestApiKey(site, { name: 'other app' });
      const stranger = createApiClient(site.app, other.key);

      expectApiProblem(await status(id, stranger), 404, 'not-found');
      expectApiProblem(await stranger.check(id, code), 404, 'not-found');
      expectApiProblem(await stranger.delete(`/api/v1/verifications/${id}`), 404, 'not-found');
      expectApiProblem(await status('ver_AAAAAAAAAAAAAAAAAAAAAA'), 404, 'not-found');
      expect((await api.check(id, code)).body.status).toBe('approved');
    });

    it('refuses a revoked key everywhere (403 key-revoked)', async () => {
      const { id, code } = await sendTo(ALICE);
      expect(await site.stores.apiKeys.revoke(owner.apiKey.id)).toBe(true);

      expectApiProblem(await api.send({ to: BOB }), 403, 'key-revoked');
      expectApiProblem(await api.check(id, code), 403, 'key-revoked');
      expectApiProblem(await status(id), 403, 'key-revoked');
      expectApiProblem(await api.delete(`/api/v1/verifications/${id}`), 403, 'key-revoked');
      expect(consoleMessagesTo(site, BOB)).toBe(0);
    });
  });

  describe('DELETE /api/v1/verifications/{id}', () => {
    it('cancels a pending verification once; its code is refused after', async () => {
      const { id, code } = await sendTo(ALICE, { label: 'checkout' });
      const canceled = await api.delete(`/api/v1/verifications/${id}`);
      expect(canceled.status).toBe(200);
      expect(canceled.body).toMatchObject({ id, status: 'canceled', attemptsLeft: 0, to: '•••• 0100' });
      expect((await site.audit.recent(1))[0]).toMatchObject({
        type: 'api_verification_canceled',
        username: 'api:checkout app',
        detail: 'checkout: •••• 0100 by text message',
      });

      const again = await api.delete(`/api/v1/verifications/${id}`);
      expect(expectApiProblem(again, 409, 'verification-closed').verificationStatus).toBe('canceled');
      const check = await api.check(id, code);
      expect(expectApiProblem(check, 409, 'verification-closed').verificationStatus).toBe('canceled');
    });

    it('says an approved or expired verification is closed (409 with its status)', async () => {
      const approved = await sendTo(ALICE);
      await api.check(approved.id, approved.code);
      const res = await api.delete(`/api/v1/verifications/${approved.id}`);
      expect(expectApiProblem(res, 409, 'verification-closed').verificationStatus).toBe('approved');

      const late = await sendTo(BOB);
      site.clock.advance(CODE_TTL_MS);
      const expired = await api.delete(`/api/v1/verifications/${late.id}`);
      expect(expectApiProblem(expired, 409, 'verification-closed').verificationStatus).toBe('expired');
    });
  });

  it('never writes a code, a key or a whole number into a log line', async () => {
    const { id, code } = await sendTo(ALICE);
    await api.check(id, wrongFor(code));
    await api.check(id, code);
    await api.post('/api/v1/verifications', '{"to": "+12025550100", ', {
      'Content-Type': 'application/json',
    });
    await api.post(`/api/v1/verifications/${id}/check`, `{"code": "${code}"`, {
      'Content-Type': 'application/json',
    });
    expect(logLines.length).toBeGreaterThan(0);
    const logged = logLines.join('\n');
    expect(logged).not.toContain(code);
    expect(logged).not.toContain(wrongFor(code));
    expect(logged).not.toContain(owner.key);
    expect(logged).not.toContain(ALICE);
  });
});
