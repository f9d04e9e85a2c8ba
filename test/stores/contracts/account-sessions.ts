import type session from 'express-session';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sessionHandleOf, type AccountSessions } from '../../../src/auth/account-sessions.js';
import type { RetiringSessionStore } from '../../../src/http/session-store.js';
import type { TestClock } from '../../helpers/clock.js';
import { sessionCalls } from './session-store.js';

/**
 * What every session store promises about the sessions of one account (AccountSessions,
 * src/auth/account-sessions.ts): each signed-in session is found by its account, from any
 * instance, and ending one is as final as a logout. Threats: a stranger ending someone else's
 * session with a handle they saw; a request still in flight saving an ended session back alive;
 * the list handing out a session id (a bearer secret) in a page.
 */
export interface AccountSessionsHarness {
  store: RetiringSessionStore & AccountSessions;
  /** The same sessions reached another way: a second connection, as a second instance has. */
  peer: RetiringSessionStore & AccountSessions;
  clock: TestClock;
  /** Lets `ms` pass for the store (for Redis, for real too). */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

const MINUTE_MS = 60_000;
const SHORT_LIFETIME_MS = 300;

export function describeAccountSessionsContract(
  backend: string,
  open: () => Promise<AccountSessionsHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`account sessions contract: ${backend}`, () => {
    let harness: AccountSessionsHarness;
    let store: ReturnType<typeof sessionCalls>;
    let peer: ReturnType<typeof sessionCalls>;

    /** A session as express-session hands it to the store, expiring `lifetimeMs` from now. */
    const sessionData = (fields: Record<string, unknown>, lifetimeMs = 30 * MINUTE_MS) =>
      ({
        cookie: {
          originalMaxAge: lifetimeMs,
          expires: new Date(harness.clock.now().getTime() + lifetimeMs),
          httpOnly: true,
          path: '/',
        },
        ...fields,
      }) as unknown as session.SessionData;

    /** Signed in as `userId` just now, from a browser and address. */
    const signedInAs = (
      userId: number,
      extra: Record<string, unknown> = {},
      lifetimeMs?: number,
    ): session.SessionData => {
      const now = harness.clock.now().getTime();
      return sessionData(
        {
          signedIn: {
            userId,
            signedInAt: now,
            lastSeenAt: now,
            previousLoginAt: null,
            userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
            ip: '203.0.113.7',
            ...extra,
          },
        },
        lifetimeMs,
      );
    };

    const handlesOf = async (userId: number, on = harness.store) =>
      (await on.listForUser(userId)).map((entry) => entry.handle).sort();
    const handles = (...sids: string[]) => sids.map(sessionHandleOf).sort();

    beforeEach(async () => {
      harness = await open();
      store = sessionCalls(harness.store);
      peer = sessionCalls(harness.peer);
    });
    afterEach(() => harness.close());

    describe('listForUser', () => {
      it('lists the account’s signed-in sessions, from either instance, with what they recorded', async () => {
        const signedInAt = harness.clock.now();
        await store.set('ann-laptop', signedInAs(1));
        harness.clock.advance(2 * MINUTE_MS);
        await peer.set('ann-phone', signedInAs(1, { userAgent: null, ip: '2001:db8::1' }));
        await store.set('bob-laptop', signedInAs(2));

        const listed = await harness.peer.listForUser(1);
        // The most recently seen first.
        expect(listed).toEqual([
          {
            handle: sessionHandleOf('ann-phone'),
            userAgent: null,
            ip: '2001:db8::1',
            signedInAt: harness.clock.now(),
            lastSeenAt: harness.clock.now(),
            expiresAt: new Date(harness.clock.now().getTime() + 30 * MINUTE_MS),
          },
          {
            handle: sessionHandleOf('ann-laptop'),
            userAgent: expect.stringContaining('Firefox/128.0'),
            ip: '203.0.113.7',
            signedInAt,
            lastSeenAt: signedInAt,
            expiresAt: expect.any(Date),
          },
        ]);
        expect(await handlesOf(2, harness.store)).toEqual(handles('bob-laptop'));
        expect(await harness.store.listForUser(3)).toEqual([]);
      });

      it('never shows a session id: each session is named by a handle the id cannot be read from', async () => {
        await store.set('a-secret-session-id', signedInAs(1));
        const [entry] = await harness.store.listForUser(1);
        expect(entry!.handle).not.toContain('a-secret-session-id');
        expect(JSON.stringify(entry)).not.toContain('a-secret-session-id');
      });

      it('lists a session kept from before user agents and addresses were recorded', async () => {
        const now = harness.clock.now().getTime();
        await store.set(
          'old',
          sessionData({ signedIn: { userId: 1, signedInAt: now, lastSeenAt: now, previousLoginAt: null } }),
        );
        expect(await harness.store.listForUser(1)).toMatchObject([
          { handle: sessionHandleOf('old'), userAgent: null, ip: null },
        ]);
      });

      it('leaves out sessions not signed in, signed out since, ended, or past their expiry', async () => {
        await store.set(
          'waiting-for-code',
          sessionData({ pendingLogin: { userId: 1, passwordVerifiedAt: 1 } }),
        );
        await store.set('signed-out-since', signedInAs(1));
        await peer.set('signed-out-since', sessionData({ channel: 'sms' }));
        await store.set('logged-out', signedInAs(1));
        await peer.destroy('logged-out');
        await store.set('short', signedInAs(1, {}, SHORT_LIFETIME_MS));
        await store.set('kept', signedInAs(1));
        await harness.elapse(SHORT_LIFETIME_MS);
        expect(await handlesOf(1)).toEqual(handles('kept'));
      });

      it('leaves out a session idle past the signed-in limit, even while the store keeps it', async () => {
        const now = harness.clock.now().getTime();
        await store.set('idle', signedInAs(1, { lastSeenAt: now - 31 * MINUTE_MS }));
        expect(await handlesOf(1)).toEqual([]);
      });

      it('keeps listing a session whose expiry a touch pushed on, after its first expiry has passed', async () => {
        await store.set('rolling', signedInAs(1, {}, SHORT_LIFETIME_MS));
        await peer.touch('rolling', signedInAs(1, {}, 30 * MINUTE_MS));
        await harness.elapse(SHORT_LIFETIME_MS);
        // Another save of the account, which tidies its index on backends that keep one.
        await store.set('another', signedInAs(1));
        expect(await handlesOf(1)).toEqual(handles('rolling', 'another'));
      });
    });

    describe('endOne', () => {
      it('ends that session for good: gone on both instances, and a late save or retire does not bring it back', async () => {
        await store.set('laptop', signedInAs(1));
        await store.set('phone', signedInAs(1));
        expect(await harness.peer.endOne(1, sessionHandleOf('laptop'))).toBe(true);

        expect(await store.get('laptop')).toBeFalsy();
        // A request of that session still in flight saves it as it ends, on either instance.
        await peer.set('laptop', signedInAs(1));
        await store.set('laptop', signedInAs(1));
        await store.touch('laptop', signedInAs(1));
        expect(await store.get('laptop')).toBeFalsy();
        expect(await peer.get('laptop')).toBeFalsy();
        // A code check in flight that then tries to sign it in afresh hears it had ended.
        expect(await peer.retire('laptop')).toBe(false);
        expect(await handlesOf(1)).toEqual(handles('phone'));
        expect(await store.get('phone')).toBeTruthy();
      });

      it('ends nothing for another account: a stranger’s handle of someone else’s session is refused', async () => {
        await store.set('ann', signedInAs(1));
        await store.set('mallory', signedInAs(2));
        expect(await harness.store.endOne(2, sessionHandleOf('ann'))).toBe(false);
        expect(await store.get('ann')).toBeTruthy();
        expect(await handlesOf(1)).toEqual(handles('ann'));
      });

      it('answers false for a handle already ended, one never issued, or the session id itself', async () => {
        await store.set('ann', signedInAs(1));
        expect(await harness.store.endOne(1, 'no-such-handle')).toBe(false);
        expect(await harness.store.endOne(1, 'ann')).toBe(false);
        expect(await store.get('ann')).toBeTruthy();
        expect(await harness.store.endOne(1, sessionHandleOf('ann'))).toBe(true);
        expect(await harness.peer.endOne(1, sessionHandleOf('ann'))).toBe(false);
      });

      it('ends nothing of a session since signed out (it is no longer the account’s)', async () => {
        await store.set('shared-computer', signedInAs(1));
        await store.set('shared-computer', sessionData({ channel: 'voice' }));
        expect(await harness.store.endOne(1, sessionHandleOf('shared-computer'))).toBe(false);
        expect(await store.get('shared-computer')).toMatchObject({ channel: 'voice' });
      });
    });

    describe('endAllForUser', () => {
      it('ends every session of the account, from the other instance, and says how many', async () => {
        await store.set('ann-1', signedInAs(1));
        await peer.set('ann-2', signedInAs(1));
        await store.set('ann-3', signedInAs(1));
        await store.set('bob', signedInAs(2));

        expect(await harness.peer.endAllForUser(1)).toBe(3);
        for (const sid of ['ann-1', 'ann-2', 'ann-3']) expect(await store.get(sid)).toBeFalsy();
        expect(await handlesOf(1)).toEqual([]);
        // Another account's session is untouched.
        expect(await store.get('bob')).toBeTruthy();
        expect(await handlesOf(2)).toEqual(handles('bob'));
        expect(await harness.store.endAllForUser(1)).toBe(0);
      });

      it('keeps the caller’s own session when asked (exceptSid)', async () => {
        await store.set('this-browser', signedInAs(1));
        await store.set('other-browser', signedInAs(1));
        expect(await harness.store.endAllForUser(1, { exceptSid: 'this-browser' })).toBe(1);
        expect(await store.get('this-browser')).toBeTruthy();
        expect(await store.get('other-browser')).toBeFalsy();
        expect(await handlesOf(1)).toEqual(handles('this-browser'));
      });

      it('is not undone by a late save of an ended session, from either instance', async () => {
        await store.set('in-flight', signedInAs(1));
        expect(await harness.store.endAllForUser(1)).toBe(1);
        await peer.set('in-flight', signedInAs(1));
        await store.set('in-flight', signedInAs(1));
        expect(await store.get('in-flight')).toBeFalsy();
        expect(await peer.get('in-flight')).toBeFalsy();
        expect(await handlesOf(1, harness.peer)).toEqual([]);
        expect(await store.retire('in-flight')).toBe(false);
      });

      it('never leaves a session readable when its save races the ending', async () => {
        await store.set('contested', signedInAs(1));
        await Promise.all([
          peer.set('contested', signedInAs(1)),
          harness.store.endAllForUser(1),
          peer.set('contested', signedInAs(1)),
        ]);
        expect(await store.get('contested')).toBeFalsy();
        expect(await peer.get('contested')).toBeFalsy();
      });

      it('leaves alone a session that was the account’s and is signed in as another now', async () => {
        // The id is the same (a store sees only ids); the site regenerates it at each sign-in,
        // but an index must not be trusted to say whose a session is.
        await store.set('passed-on', signedInAs(1));
        await store.set('passed-on', signedInAs(2));
        expect(await harness.store.endAllForUser(1)).toBe(0);
        expect(await store.get('passed-on')).toMatchObject({ signedIn: { userId: 2 } });
      });
    });
  });
}
