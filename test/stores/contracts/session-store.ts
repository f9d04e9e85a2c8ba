import type session from 'express-session';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RetiringSessionStore } from '../../../src/http/session-store.js';
import type { TestClock } from '../../helpers/clock.js';

/**
 * What every session store backend promises (src/http/session-store.ts): express-session's Store,
 * plus ids that, once ended, are never written or read again, and end for exactly one caller.
 */
export interface SessionStoreHarness {
  store: RetiringSessionStore;
  /** The same sessions reached another way: a second connection, as a second instance has. */
  peer: RetiringSessionStore;
  clock: TestClock;
  /** The ended ids the backend remembers, with until when (ms). */
  tombstones(): Promise<Array<{ sid: string; expiresAt: number }>>;
  /** How many sessions the backend holds, expired ones included. */
  countSessions(): Promise<number>;
  close(): Promise<void>;
}

const MINUTE_MS = 60_000;

/** express-session's Store methods, as promises. */
export function storeCalls(store: RetiringSessionStore) {
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
        // express-session types touch's callback without the error it may pass.
        const done = (error?: unknown) => (error ? reject(error) : resolve());
        store.touch!(sid, data, done as () => void);
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
export function sessionData(now: Date, fields: Record<string, unknown>, minutes = 30): session.SessionData {
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
    let store: ReturnType<typeof storeCalls>;
    let peer: ReturnType<typeof storeCalls>;
    const data = (fields: Record<string, unknown>, minutes?: number) =>
      sessionData(harness.clock.now(), fields, minutes);

    beforeEach(async () => {
      harness = await open();
      store = storeCalls(harness.store);
      peer = storeCalls(harness.peer);
    });
    afterEach(() => harness.close());

    it('keeps a session until it is destroyed, for every connection', async () => {
      await store.set('alive', data({ flash: { kind: 'info', message: 'hello' } }));
      expect(await peer.get('alive')).toMatchObject({ flash: { message: 'hello' } });
      await store.set('alive', data({ channel: 'voice' }));
      expect(await peer.get('alive')).toMatchObject({ channel: 'voice' });
      await peer.destroy('alive');
      expect(await store.get('alive')).toBeNull();
    });

    it('finds nothing for an unknown id, or once the session has expired', async () => {
      expect(await store.get('never-saved')).toBeNull();
      await store.set('brief', data({}, 1));
      harness.clock.advanceMinutes(1);
      expect(await store.get('brief')).toBeNull();
    });

    it('moves the expiry on with touch', async () => {
      await store.set('rolling', data({}, 1));
      await store.touch('rolling', data({}, 30));
      harness.clock.advanceMinutes(2);
      expect(await store.get('rolling')).not.toBeNull();
    });

    describe('after a session is destroyed (logout, or an id replaced by a new one)', () => {
      // Threat: a request that was still running when the person logged out saves the session back
      // as it ends, and the logged-out cookie works again.
      beforeEach(async () => {
        await store.set('gone', data({ signedIn: { userId: 1 } }));
        await store.destroy('gone');
      });

      it('never writes that id again, from any instance: a late save and a late touch leave nothing', async () => {
        await peer.set('gone', data({ signedIn: { userId: 1 } }));
        await store.touch('gone', data({ signedIn: { userId: 1 } }));
        expect(await store.get('gone')).toBeNull();
        expect(await peer.get('gone')).toBeNull();
        expect(await harness.countSessions()).toBe(0);
      });

      it('keeps no session data in the tombstone', async () => {
        expect(await harness.tombstones()).toEqual([{ sid: 'gone', expiresAt: expect.any(Number) }]);
      });

      it('reports the id as no longer live when a slow request then tries to replace it', async () => {
        expect(await peer.retire('gone')).toBe(false);
      });
    });

    it('retires a live id exactly once: the first caller hears "live", every later one does not', async () => {
      await store.set('once', data({ pendingLogin: { userId: 1 } }));
      expect(await store.retire('once')).toBe(true);
      expect(await peer.retire('once')).toBe(false);
      await store.set('once', data({ signedIn: { userId: 1 } }));
      expect(await store.get('once')).toBeNull();
    });

    it('tells exactly one of 10 racing retirements, on two instances, that the id was live', async () => {
      // Threat: two tabs entering the right code at once both turning one half-logged-in session
      // into a signed-in one.
      await store.set('racing', data({ pendingLogin: { userId: 1 } }));
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : peer).retire('racing')),
      );
      expect(answers.filter((wasLive) => wasLive === true)).toHaveLength(1);
    });

    it('keeps a tombstone until the session’s own expiry, then sweeps it', async () => {
      await store.set('long', data({}, 120));
      await store.destroy('long');
      const expiresAt = harness.clock.now().getTime() + 120 * MINUTE_MS;
      expect(await harness.tombstones()).toEqual([{ sid: 'long', expiresAt }]);

      harness.clock.advanceMinutes(119);
      await store.get('anything');
      await store.set('long', data({}));
      expect(await store.get('long')).toBeNull();

      harness.clock.advanceMinutes(11); // past its expiry, and past the sweep's 10-minute interval
      await store.get('anything');
      expect(await harness.tombstones()).toEqual([]);
    });

    it('keeps a tombstone at least 30 minutes, however close the session was to its end', async () => {
      await store.set('short', data({}, 1));
      await store.destroy('short');
      expect(await harness.tombstones()).toEqual([
        { sid: 'short', expiresAt: harness.clock.now().getTime() + 30 * MINUTE_MS },
      ]);
    });
  });
}
