import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import type { AccountSessions } from '../../src/auth/account-sessions.js';
import type { RetiringSessionStore } from '../../src/http/session-store.js';
import type { MfaProvider, Scope } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import { createRedisSessionStore } from '../../src/stores/redis/session-store.js';
import { createBrowser, type Browser, type Response } from '../helpers/agent.js';
import { createTestClock } from '../helpers/clock.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect, setCookieHeaders } from '../helpers/expectations.js';
import { register, submitPassword, type TestAccount } from '../helpers/flows.js';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  isRedisAvailable,
  randomKeyPrefix,
} from '../helpers/redis.js';

/** How long the provider takes to answer when a test slows it down: a slow network, say. */
const SLOW_ANSWER_MS = 1000;

interface ScriptedProvider extends MfaProvider {
  lastCode(scope: Scope): string;
  /** Makes the next send or check answer after SLOW_ANSWER_MS; resolves once that call has begun. */
  slowDownNextCall(): Promise<void>;
}

/** A provider that keeps its codes in memory and can be told to be slow, like a provider far away. */
function createScriptedProvider(): ScriptedProvider {
  const codesByHandle = new Map<string, string>();
  const lastByScope = new Map<Scope, string>();
  let beginSlowCall: (() => void) | null = null;
  const answerWhenDue = async () => {
    const begin = beginSlowCall;
    if (!begin) return;
    beginSlowCall = null;
    begin();
    await sleep(SLOW_ANSWER_MS);
  };
  return {
    name: 'scripted',
    channels: ['sms', 'voice'],
    async send({ scope }) {
      await answerWhenDue();
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const handle = String(codesByHandle.size + 1);
      codesByHandle.set(handle, code);
      lastByScope.set(scope, code);
      return { handle };
    },
    async verify({ code, handle }) {
      await answerWhenDue();
      return handle !== undefined && codesByHandle.get(handle) === code ? 'valid' : 'invalid';
    },
    lastCode(scope) {
      const code = lastByScope.get(scope);
      if (!code) throw new Error(`no ${scope} code was sent`);
      return code;
    },
    slowDownNextCall() {
      return new Promise((resolve) => {
        beginSlowCall = resolve;
      });
    },
  };
}

function sessionIdFrom(res: Response): string {
  const cookie = setCookieHeaders(res).find((value) => value.startsWith('mfa.sid='));
  const value = cookie?.split(';')[0]?.slice('mfa.sid='.length);
  if (!value) throw new Error('the response set no session cookie');
  return value;
}

const SIGNED_OUT_OF_ACCOUNT = '/login?next=%2Faccount';

interface SessionBackend {
  sessions: string;
  /** The session store for one test (none: the app's own SQLite file), and how to clean it up. */
  open(clock: Clock): Promise<{ store?: RetiringSessionStore & AccountSessions; close(): Promise<void> }>;
}

/** Where the sessions live: the app's SQLite file, or Redis, as several instances share them. */
const SESSION_BACKENDS: SessionBackend[] = [
  { sessions: 'SQLite', open: async () => ({ close: async () => undefined }) },
  // Without Redis the run says once that the Redis suites are skipped (test/helpers/services-setup.ts).
  ...(isRedisAvailable()
    ? [
        {
          sessions: 'Redis',
          async open(clock: Clock) {
            const redis = await connectTestRedis();
            const keyPrefix = randomKeyPrefix();
            return {
              store: createRedisSessionStore(redis, { keyPrefix, clock }),
              async close() {
                await deleteKeysWithPrefix(redis, keyPrefix);
                redis.destroy();
              },
            };
          },
        },
      ]
    : []),
];

const TITLE =
  'a logout while another request of the same session waits on the code provider ($sessions sessions)';

describe.each(SESSION_BACKENDS)(TITLE, ({ open }) => {
  // Threat: the person logs out (say, on a shared computer) while a slow request of theirs is
  // still running; when it ends it must not bring the logged-out session back to life.
  let site: TestApp;
  let provider: ScriptedProvider;
  let sessions: Awaited<ReturnType<SessionBackend['open']>>;
  beforeEach(async () => {
    provider = createScriptedProvider();
    const clock = createTestClock();
    sessions = await open(clock);
    site = await createTestApp({
      clock,
      providers: createProviderPool([provider]),
      sessionStore: sessions.store,
    });
  });
  afterEach(async () => {
    site.close();
    await sessions.close();
  });

  /** An account proven with its sign-up code, which this provider delivered; the browser is left logged out. */
  const registerHere = (browser: Browser, username: string) =>
    register(browser, { username }, { enrolCode: () => provider.lastCode('enrol') });

  const loginsSucceeded = async () =>
    (await site.audit.recent()).filter((event) => event.type === 'login_succeeded');

  /** Registers, enters the password and the login code; returns the signed-in session id. */
  async function signIn(browser: Browser, username: string): Promise<{ account: TestAccount; sid: string }> {
    const account = await registerHere(browser, username);
    await site.grantAdmin(username);
    expectRedirect(await submitPassword(browser, account), '/verify');
    expectRedirect(
      await browser.submit('/verify', '/verify', { code: provider.lastCode('login') }),
      '/account',
    );
    const page = await browser.get('/account');
    expectPage(page, 200, new RegExp(username));
    return { account, sid: browser.cookie('mfa.sid')!.slice('mfa.sid='.length) };
  }

  /**
   * Starts a form post whose provider call is slow, and waits until that call has begun. The
   * answer comes wrapped: awaiting a bare supertest request here would wait for the answer too.
   */
  async function startSlowPost(browser: Browser, pagePath: string, action: string, fields = {}) {
    const slowCallBegun = provider.slowDownNextCall();
    const answer = browser.submit(pagePath, action, fields);
    await slowCallBegun;
    return { answer };
  }

  const replaySessionCookie = (sid: string, path: string) =>
    request(site.app).get(path).set('Cookie', `mfa.sid=${sid}`);

  it('keeps the old cookie refused after a slow secure-area code request ends, every time', async () => {
    for (const username of ['root0', 'root1', 'root2']) {
      const browser = createBrowser(site.app);
      const { sid } = await signIn(browser, username);

      const slowStepUp = await startSlowPost(browser, '/admin', '/admin/step-up');
      expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');
      expectRedirect(await slowStepUp.answer, '/verify');

      expectRedirect(await browser.get('/account'), SIGNED_OUT_OF_ACCOUNT);
      expectRedirect(await replaySessionCookie(sid, '/account'), SIGNED_OUT_OF_ACCOUNT);
    }
  });

  it('does not sign the browser in again when a slow secure-area code is accepted after the logout', async () => {
    const browser = createBrowser(site.app);
    const { sid } = await signIn(browser, 'root0');
    expectRedirect(await browser.submit('/admin', '/admin/step-up'), '/verify');

    const slowCheck = await startSlowPost(browser, '/verify', '/verify', {
      code: provider.lastCode('admin'),
    });
    expectRedirect(await browser.submit('/account', '/logout'), '/login?signedOut');
    const answer = await slowCheck.answer;

    expectRedirect(answer, '/login?sessionEnded');
    expect(setCookieHeaders(answer).filter((value) => value.startsWith('mfa.sid='))).toEqual([]);
    expectPage(await browser.get('/login?sessionEnded'), 200, /Your session ended in another tab or window/);
    expectRedirect(await browser.get('/admin'), '/login?next=%2Fadmin');
    expectRedirect(await browser.get('/account'), SIGNED_OUT_OF_ACCOUNT);
    expectRedirect(await replaySessionCookie(sid, '/account'), SIGNED_OUT_OF_ACCOUNT);
  });

  it('does not sign the browser in when a slow login code is accepted after the session ended', async () => {
    const browser = createBrowser(site.app);
    const account = await registerHere(browser, 'walker');
    // The sign-up code signed walker in once; that browser then logged out.
    expect(await loginsSucceeded()).toHaveLength(1);
    const afterPassword = await submitPassword(browser, account);
    expectRedirect(afterPassword, '/verify');
    const halfSignedIn = sessionIdFrom(afterPassword);

    const slowCheck = await startSlowPost(browser, '/verify', '/verify', {
      code: provider.lastCode('login'),
    });
    expectRedirect(await browser.submit('/verify', '/logout'), '/login?signedOut');
    const answer = await slowCheck.answer;

    expectRedirect(answer, '/login?sessionEnded');
    expect(setCookieHeaders(answer).filter((value) => value.startsWith('mfa.sid='))).toEqual([]);
    expectRedirect(await browser.get('/account'), SIGNED_OUT_OF_ACCOUNT);
    expectRedirect(await replaySessionCookie(halfSignedIn, '/verify'), '/login');
    expect(await loginsSucceeded()).toHaveLength(1);
  });

  it('keeps the half-logged-in session ended after a slow resend', async () => {
    const browser = createBrowser(site.app);
    const account = await registerHere(browser, 'walker');
    const afterPassword = await submitPassword(browser, account);
    const halfSignedIn = sessionIdFrom(afterPassword);
    site.clock.advance(30_000);

    const slowResend = await startSlowPost(browser, '/verify', '/verify/resend');
    expectRedirect(await browser.submit('/verify', '/logout'), '/login?signedOut');
    expectRedirect(await slowResend.answer, '/verify');

    expectRedirect(await browser.get('/verify'), '/login');
    expectRedirect(await replaySessionCookie(halfSignedIn, '/verify'), '/login');
  });
});
