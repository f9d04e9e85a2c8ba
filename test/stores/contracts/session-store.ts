import type session from 'express-session';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RetiringSessionStore } from '../../../src/http/session-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every session store backend promises (RetiringSessionStore, src/http/session-store.ts):
 * express-session's get/set/touch/destroy, and an ended session id stays ended. Threat it guards:
 * a request still running when the person logs out (on this instance or another) saves the
 * session back as it ends, and the logged-out cookie works again.
 */
export interface SessionStoreHarness {
  store: RetiringSessionStore;
  /** The same sessions reached another way: a second connection, as a second instance of the site has. */
  peer: RetiringSessionStore;
  clock: TestClock;
  /**
   * Lets `ms` pass for the store. The test clock moves; a backend whose lifetimes Redis counts
   * down also waits that long for real, so lifetimes in these specs are a few hundred milliseconds.
   */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

const MINUTE_MS = 60_000;
/** Short enough to wait out for real against Redis. */
const SHORT_LIFETIME_MS = 300;

/** express-session's Store methods, as promises. */
export function sessionCalls(store: RetiringSessionStore) {
  return {
    get: (sid: string) =>
      new Promise<session.SessionData | null | undefined>((resolve, reject) =>
        store.get(sid, (error, data) => (error ? reject(error) : resolve(data))),
      ),
    set: (sid: string, data: session.SessionData) =>
      new Promise<void>((resolve, reject) =>
        store.set(sid, data, (error) => (error ? reject(error) : resolve())),
      ),
    touch: (sid: string, data: session.SessionData) =>
      new Promise<void>((resolve, reject) => {
        // express-session passes touch an error as set's; its types leave that out.
        const touch = store.touch as
          ((sid: string, data: session.SessionData, callback: (error?: unknown) => void) => void) | undefined;
        if (!touch) throw new Error('the store cannot push a session’s expiry on (no touch)');
        touch.call(store, sid, data, (error) => (error ? reject(error) : resolve()));
      }),
    destroy: (sid: string) =>
      new Promise<void>((resolve, reject) =>
        store.destroy(sid, (error) => (error ? reject(error) : resolve())),
      ),
    retire: (sid: string) =>
      new Promise<boolean | undefined>((resolve, reject) =>
        store.retireSession(sid, (error, wasLive) => (error ? reject(error) : resolve(wasLive))),
      ),
  };
}

/** A session as express-session hands it to the store, expiring `minutes` from `now`. */
export function sessionDataAt(now: Date, fields: Record<string, unknown>, minutes = 30): session.SessionData {
  return {
    cookie: { expires: new Date(now.getTime() + minutes * MINUTE_MS), originalMaxAge: null },
    ...fields,
  } as unknown as session.SessionData;
}

export function describeSessionStoreContract(
  backend: string,
  open: () => Promise<SessionStoreHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`session store contract: ${backend}`, () => {
    let harness: SessionStoreHarness;
    let store: ReturnType<typeof sessionCalls>;
    let peer: ReturnType<typeof sessionCalls>;

    /** A session as express-session hands it to the store, expiring `lifetimeMs` from the test clock. */
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

    beforeEach(async () => {
      harness = await open();
      store = sessionCalls(harness.store);
      peer = sessionCalls(harness.peer);
    });
    afterEach(() => harness.close());

    describe('a live session', () => {
      it('finds nothing for an id never saved', async () => {
        expect(await store.get('never-saved')).toBeFalsy();
      });

      it('reads back what was saved, from the other instance too', async () => {
        await store.set('sid-1', sessionData({ signedIn: { userId: 7, at: 1 }, channel: 'voice' }));
        const expected = {
          signedIn: { userId: 7, at: 1 },
          channel: 'voice',
          cookie: { originalMaxAge: 30 * MINUTE_MS },
        };
        expect(await store.get('sid-1')).toMatchObject(expected);
        expect(await peer.get('sid-1')).toMatchObject(expected);
      });

      it('keeps the latest save, whichever instance made it', async () => {
        await store.set('sid-1', sessionData({ step: 1 }));
        await peer.set('sid-1', sessionData({ step: 2 }));
        expect(await store.get('sid-1')).toMatchObject({ step: 2 });
      });

      it('keeps sessions apart', async () => {
        await store.set('alice', sessionData({ signedIn: { userId: 1 } }));
        await store.set('bob', sessionData({ signedIn: { userId: 2 } }));
        expect(await store.get('alice')).toMatchObject({ signedIn: { userId: 1 } });
        expect(await store.get('bob')).toMatchObject({ signedIn: { userId: 2 } });
      });

      it('is gone once its own expiry has passed', async () => {
        await store.set('short', sessionData({ step: 1 }, SHORT_LIFETIME_MS));
        await harness.elapse(SHORT_LIFETIME_MS);
        expect(await store.get('short')).toBeFalsy();
      });

      it('lives on when a touch pushes its expiry later (rolling sessions)', async () => {
        await store.set('rolling', sessionData({ step: 1 }, SHORT_LIFETIME_MS));
        await peer.touch('rolling', sessionData({ step: 1 }, 30 * MINUTE_MS));
        await harness.elapse(SHORT_LIFETIME_MS);
        expect(await store.get('rolling')).toMatchObject({ step: 1 });
      });

      it('is not created by a touch', async () => {
        await store.touch('never-saved', sessionData({ step: 1 }));
        expect(await store.get('never-saved')).toBeFalsy();
      });
    });

    describe('after a session is destroyed (logout, or an id replaced by a new one)', () => {
      beforeEach(async () => {
        await store.set('gone', sessionData({ signedIn: { userId: 1 } }));
        await store.destroy('gone');
      });

      it('finds nothing, on either instance', async () => {
        expect(await store.get('gone')).toBeFalsy();
        expect(await peer.get('gone')).toBeFalsy();
      });

      it('never writes that id again: a late save and a late touch from either instance leave nothing', async () => {
        await store.set('gone', sessionData({ signedIn: { userId: 1 } }));
        await peer.set('gone', sessionData({ signedIn: { userId: 1 } }));
        await peer.touch('gone', sessionData({ signedIn: { userId: 1 } }));
        expect(await store.get('gone')).toBeFalsy();
        expect(await peer.get('gone')).toBeFalsy();
      });

      it('reports the id as no longer live when a slow request then tries to replace it', async () => {
        expect(await peer.retire('gone')).toBe(false);
      });

      it('keeps the id ended after the session’s own expiry has passed', async () => {
        await store.set('brief', sessionData({ step: 1 }, SHORT_LIFETIME_MS));
        await store.destroy('brief');
        await harness.elapse(SHORT_LIFETIME_MS);
        await peer.set('brief', sessionData({ signedIn: { userId: 1 } }));
        expect(await store.get('brief')).toBeFalsy();
        expect(await store.retire('brief')).toBe(false);
      });

      it('can be destroyed again without an error', async () => {
        await expect(peer.destroy('gone')).resolves.toBeUndefined();
        expect(await store.get('gone')).toBeFalsy();
      });
    });

    describe('retireSession', () => {
      it('retires a live id exactly once: the first caller hears "live", every later one does not', async () => {
        await store.set('once', sessionData({ pendingLogin: { userId: 1 } }));
        expect(await store.retire('once')).toBe(true);
        expect(await peer.retire('once')).toBe(false);
        expect(await store.retire('once')).toBe(false);
        await store.set('once', sessionData({ signedIn: { userId: 1 } }));
        expect(await store.get('once')).toBeFalsy();
      });

      it('counts an id never saved as live the first time (a visitor whose session was never written)', async () => {
        expect(await store.retire('fresh')).toBe(true);
        expect(await store.retire('fresh')).toBe(false);
        await peer.set('fresh', sessionData({ signedIn: { userId: 1 } }));
        expect(await store.get('fresh')).toBeFalsy();
      });

      it('lets exactly one of many racing retires hear "live", across instances', async () => {
        // Two instances regenerating the same session at once (two tabs, two code checks).
        await store.set('raced', sessionData({ pendingLogin: { userId: 1 } }));
        const answers = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : peer).retire('raced')),
        );
        expect(answers.filter((wasLive) => wasLive === true)).toHaveLength(1);
        expect(answers.filter((wasLive) => wasLive === false)).toHaveLength(9);
      });

      it('never leaves the session readable when a save races the retire', async () => {
        await store.set('contested', sessionData({ step: 1 }));
        await Promise.all([
          peer.set('contested', sessionData({ signedIn: { userId: 1 } })),
          store.retire('contested'),
          peer.set('contested', sessionData({ signedIn: { userId: 1 } })),
        ]);
        expect(await store.get('contested')).toBeFalsy();
        expect(await peer.get('contested')).toBeFalsy();
      });
    });
  });
}
