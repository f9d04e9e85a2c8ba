import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHashingProcess, type HashingProcess } from '../../src/users/hashing-process.js';
import {
  HashingBusyError,
  PASSWORD_HASH_OPTIONS,
  limitConcurrentHashing,
  type PasswordHasher,
} from '../../src/users/passwords.js';
import { createBrowser, csrfTokenIn } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { register, submitPassword, type TestAccount } from '../helpers/flows.js';
import { createTestClock } from '../helpers/clock.js';
import {
  createHeldHasher,
  createStallingHasher,
  type HeldHasher,
  type StallingHasher,
} from '../helpers/held-hasher.js';

const BUSY = /Many people are logging in or signing up right now/;

// Threat: a burst of logins taking every core for argon2 (every page waits), or queueing without
// end (memory). One hash runs at a time here, one more may wait; a third is told to come back.
describe('password checks past the hashing queue', () => {
  let site: TestApp;
  let inner: HeldHasher;
  /** Calls that reached the queue (whether they wait in it or run). */
  let queued: number;
  let account: TestAccount;

  beforeEach(async () => {
    inner = createHeldHasher();
    const limited = limitConcurrentHashing(inner.hasher, { concurrency: 1, maxWaiting: 1 });
    queued = 0;
    const counting: PasswordHasher = {
      hash: (password, options) => ((queued += 1), limited.hash(password, options)),
      verify: (hash, password, options) => ((queued += 1), limited.verify(hash, password, options)),
    };
    site = await createTestApp({ hasher: counting });
    account = await register(createBrowser(site.app));
    queued = 0;
    inner.calls.length = 0;
    inner.hold();
  });
  afterEach(async () => {
    inner.release();
    await site.close();
  });

  const login = (fields: { username: string; password: string }) =>
    createBrowser(site.app).submit('/login', '/login', fields);

  /**
   * Starts a login and waits until its password check has reached the queue. The answer comes
   * wrapped: an async function returning the bare promise would wait for the answer itself.
   */
  async function loginInFlight(fields: { username: string; password: string }) {
    const before = queued;
    const answer = login(fields);
    await vi.waitFor(() => expect(queued).toBe(before + 1));
    return { answer };
  }

  it('answers a login past the queue with the 503 busy page at once, and checks the queued ones', async () => {
    const first = await loginInFlight(account);
    const second = await loginInFlight({ username: account.username, password: 'wrong password here' });

    const refused = await login({ username: account.username, password: account.password });
    expectPage(refused, 503, BUSY);
    expect(refused.headers['retry-after']).toBe('5');
    expect(inner.calls).toHaveLength(1);

    inner.release();
    expectRedirect(await first.answer, '/verify');
    expectPage(await second.answer, 401, /Invalid username or password/);
    expect(inner.maxRunning).toBe(1);
  });

  /** Posts a login, waits until its password is in the queue, then hangs up. */
  async function loginThenHangUp(fields: { username: string; password: string }) {
    const browser = createBrowser(site.app);
    const form = await browser.get('/login');
    const before = queued;
    const posting = browser.agent
      .post('/login')
      .type('form')
      .send({ ...fields, _csrf: csrfTokenIn(form.text) });
    posting.end(() => undefined);
    await vi.waitFor(() => expect(queued).toBe(before + 1));
    posting.abort();
  }

  it('drops a password whose client hung up while it waited: never hashed, and its place goes to the next', async () => {
    const first = await loginInFlight(account);
    await loginThenHangUp({ username: account.username, password: 'a guess from a client that hangs up' });
    // The queue has room again at once: this one waits in the place the other left.
    const next = await loginInFlight({ username: account.username, password: 'wrong password here' });

    inner.release();
    expectRedirect(await first.answer, '/verify');
    expectPage(await next.answer, 401, /Invalid username or password/);
    expect(inner.calls.map((call) => call.password)).toEqual([account.password, 'wrong password here']);
  });

  it('still counts a login whose client hung up as an attempt: hanging up buys no free turns', async () => {
    const first = await loginInFlight(account);
    // With the one in flight, as many as one client may fail: each left the queue unchecked, and
    // each still counts.
    for (let i = 0; i < 9; i += 1) {
      await loginThenHangUp({ username: account.username, password: `a guess that is never checked ${i}` });
    }
    expectPage(
      await login({ username: account.username, password: 'one more guess' }),
      429,
      /Too many failed attempts/,
    );
    inner.release();
    expectRedirect(await first.answer, '/verify');
    expect(inner.calls.map((call) => call.password)).toEqual([account.password]);
  });

  it('sends the decoy check for an unknown username through the same queue', async () => {
    const known = await loginInFlight({ username: account.username, password: 'wrong password here' });
    const unknown = await loginInFlight({ username: 'nobody-here', password: 'wrong password here' });
    // It waits its turn like any other check: only the first has reached the hasher.
    expect(inner.calls).toHaveLength(1);
    // And past the queue it is refused like any other.
    expectPage(await login({ username: 'no-one-else', password: 'wrong password here' }), 503, BUSY);

    inner.release();
    expectPage(await known.answer, 401);
    expectPage(await unknown.answer, 401);
    expect(inner.calls.map((call) => call.hash)).toEqual([`fake:${account.password}`, null]);
  });

  it('does not count a login refused as busy as a failed password', async () => {
    const held = [
      await loginInFlight({ username: 'someone', password: 'wrong password here' }),
      await loginInFlight({ username: 'someone', password: 'wrong password here' }),
    ];
    // More than the 10 failures one client may have: none of them was a guess.
    for (let i = 0; i < 12; i += 1) {
      expectPage(await login({ username: account.username, password: 'a guess that is not checked' }), 503);
    }
    inner.release();
    await Promise.all(held.map((login) => login.answer));
    expectRedirect(await submitPassword(createBrowser(site.app), account), '/verify');
  });

  it('answers a registration past the queue with the 503 busy page, and keeps nothing of it', async () => {
    const held = [await loginInFlight(account), await loginInFlight(account)];
    const browser = createBrowser(site.app);
    const refused = await browser.submit('/register', '/register', {
      username: 'newcomer',
      password: 'another long passphrase',
      phone: '+12025550142',
      channel: 'sms',
    });
    expectPage(refused, 503, BUSY);
    inner.release();
    await Promise.all(held.map((login) => login.answer));
    expect(await site.users.findByUsername('newcomer')).toBeNull();
    await register(createBrowser(site.app), { username: 'newcomer', phone: '+12025550142' });
  });
});

// Threat: the hashing process crashing (or killed for memory) turning every login into a 500
// with a stack trace, or into a failed password that counts toward the lockout.
describe('password checks while the hashing process is unavailable', () => {
  const LOW_COST = { ...PASSWORD_HASH_OPTIONS, memoryCost: 1024 };
  let site: TestApp;
  let hasher: HashingProcess;

  beforeEach(async () => {
    hasher = await createHashingProcess({ cost: LOW_COST, limits: { concurrency: 1, maxWaiting: 10 } });
    site = await createTestApp({ hasher });
  });
  afterEach(async () => {
    await hasher.close();
    await site.close();
  });

  it('answers a login with the 503 "try again in a moment" page, and does not count it as a failed password', async () => {
    const account = await register(createBrowser(site.app));
    await hasher.close();

    // More than the 10 failures one client may have: none of them was a guess.
    for (let i = 0; i < 12; i += 1) {
      const refused = await createBrowser(site.app).submit('/login', '/login', {
        username: account.username,
        password: account.password,
      });
      expectPage(refused, 503, /Passwords cannot be checked right now\. Please try again in a moment\./);
      expect(refused.headers['retry-after']).toBe('5');
    }
  });
});

// Threat: a login that waited in the queue past the end of its throttle window, then answered
// busy, handing its count back to the *next* window: one more guess there than the limit allows.
describe('a login answered busy after its throttle window ended', () => {
  const STALLED = 'a password that waits past the window';
  let site: TestApp;
  let stalling: StallingHasher;

  beforeEach(async () => {
    stalling = createStallingHasher(STALLED);
    site = await createTestApp({ hasher: stalling.hasher, clock: createTestClock() });
  });
  afterEach(() => site.close());

  const login = (password: string) =>
    createBrowser(site.app).submit('/login', '/login', { username: 'alice', password });

  it('does not give the next window a free attempt', async () => {
    const stalled = login(STALLED);
    await vi.waitFor(() => expect(stalling.answerStalledBusy).toBeDefined());
    // Its count was taken in the window that opened with it; that window ends now.
    site.clock.advanceMinutes(15);
    for (let i = 0; i < 10; i += 1) expectPage(await login(`wrong password ${i}`), 401);

    stalling.answerStalledBusy!();
    expectPage(await stalled, 503, BUSY);
    expectPage(await login('one guess too many'), 429, /Too many failed attempts/);
  });
});
