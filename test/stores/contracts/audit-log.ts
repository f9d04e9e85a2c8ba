import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../../src/audit/log.js';
import type { TestClock } from '../../helpers/clock.js';

/** What every AuditLog backend promises (src/audit/log.ts). */
export interface AuditLogHarness {
  log: AuditLog;
  /** The same log reached another way: a second connection, as a second instance has. */
  peer: AuditLog;
  clock: TestClock;
  /** An account id the log may point at (a real row where the backend checks). */
  createUserId(): Promise<number>;
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60_000;

export function describeAuditLogContract(
  backend: string,
  open: () => Promise<AuditLogHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`AuditLog contract: ${backend}`, () => {
    let harness: AuditLogHarness;
    let log: AuditLog;

    beforeEach(async () => {
      harness = await open();
      log = harness.log;
    });
    afterEach(() => harness.close());

    it('keeps each event with its time, and leaves out what was not given', async () => {
      const userId = await harness.createUserId();
      await log.record({
        type: 'login_succeeded',
        userId,
        username: 'ann',
        ip: '203.0.113.7',
        detail: 'login code by text message',
      });
      await log.record({ type: 'login_throttled' });
      const [bare, full] = await harness.peer.recent();
      expect(full).toEqual({
        id: expect.any(Number),
        at: harness.clock.now(),
        type: 'login_succeeded',
        userId,
        username: 'ann',
        ip: '203.0.113.7',
        detail: 'login code by text message',
      });
      expect(bare).toMatchObject({
        type: 'login_throttled',
        userId: null,
        username: null,
        ip: null,
        detail: null,
      });
    });

    it('answers the newest events first, the later of two in one millisecond first, up to the limit', async () => {
      for (const username of ['ann', 'ben']) {
        await log.record({ type: 'logout', username });
        harness.clock.advance(1_000);
      }
      await log.record({ type: 'logout', username: 'cai' });
      await harness.peer.record({ type: 'logout', username: 'dot' });
      expect((await log.recent()).map((event) => event.username)).toEqual(['dot', 'cai', 'ben', 'ann']);
      expect((await log.recent(2)).map((event) => event.username)).toEqual(['dot', 'cai']);
    });

    describe('retention', () => {
      it('deletes only events from before the cutoff, oldest first, a batch at a time', async () => {
        for (let day = 0; day < 5; day += 1) {
          await log.record({ type: 'login_password_failed', username: `day${day}` });
          harness.clock.advance(DAY_MS);
        }
        const cutoff = new Date(harness.clock.now().getTime() - 2 * DAY_MS); // days 0, 1 and 2 are older
        expect(await log.deleteOlderThan(cutoff, 2)).toBe(2);
        expect((await log.recent()).map((event) => event.username)).toEqual(['day4', 'day3', 'day2']);
        expect(await harness.peer.deleteOlderThan(cutoff, 2)).toBe(1);
        expect(await log.deleteOlderThan(cutoff, 2)).toBe(0);
        expect((await log.recent()).map((event) => event.username)).toEqual(['day4', 'day3']);
      });

      it('never deletes an event at the cutoff itself', async () => {
        await log.record({ type: 'logout', username: 'ann' });
        expect(await log.deleteOlderThan(harness.clock.now(), 500)).toBe(0);
        expect(await log.recent()).toHaveLength(1);
      });
    });

    it("answers one account's own events since a time, newest first, and no one else's", async () => {
      const ada = await harness.createUserId();
      const ben = await harness.createUserId();
      await log.record({ type: 'login_succeeded', userId: ada, username: 'ada' });
      harness.clock.advance(DAY_MS);
      const since = harness.clock.now();
      await log.record({ type: 'code_sent', userId: ada, username: 'ada' });
      await log.record({ type: 'login_succeeded', userId: ben, username: 'ben' });
      // Typed as a name, without the account's id: not the account's own event.
      await log.record({ type: 'login_password_failed', username: 'ada' });
      harness.clock.advance(1_000);
      await harness.peer.record({ type: 'password_changed', userId: ada, username: 'ada' });
      const events = await harness.peer.forUser(ada, since);
      expect(events.map((event) => event.type)).toEqual(['password_changed', 'code_sent']);
      expect(await log.forUser(ada, since, 1)).toHaveLength(1);
    });

    it('keeps a deleted account’s events under a pseudonym: found by its id, or by its name typed any way without an id', async () => {
      const ada = await harness.createUserId();
      const ben = await harness.createUserId();
      await log.record({ type: 'login_password_failed', username: 'ＡＤＡ' });
      await log.record({ type: 'phone_proven', userId: ada, username: 'Ada', detail: '•••• 0142' });
      await log.record({ type: 'login_succeeded', userId: ada, username: 'Ada', ip: '203.0.113.7' });
      await log.record({ type: 'login_password_failed', username: 'adam' });
      // Another account keeps its own events, whatever they are named (the name freed and taken).
      await log.record({ type: 'phone_proven', userId: ben, username: 'ada', detail: '•••• 0199' });

      expect(
        await harness.peer.pseudonymizeAccount({ userId: ada, username: 'Ada' }, 'deleted-0a1b2c3d'),
      ).toBe(3);
      const events = (await log.recent()).reverse();
      expect(
        events.map(({ type, userId, username, ip, detail }) => ({ type, userId, username, ip, detail })),
      ).toEqual([
        { type: 'login_password_failed', userId: null, username: 'deleted-0a1b2c3d', ip: null, detail: null },
        { type: 'phone_proven', userId: null, username: 'deleted-0a1b2c3d', ip: null, detail: null },
        {
          type: 'login_succeeded',
          userId: null,
          username: 'deleted-0a1b2c3d',
          ip: '203.0.113.7',
          detail: null,
        },
        { type: 'login_password_failed', userId: null, username: 'adam', ip: null, detail: null },
        { type: 'phone_proven', userId: ben, username: 'ada', ip: null, detail: '•••• 0199' },
      ]);
      expect(await log.forUser(ada, new Date(0))).toEqual([]);
    });

    it("renames the account where it acted on others (an admin's help), and no one else", async () => {
      const ada = await harness.createUserId();
      const ben = await harness.createUserId();
      await log.record({
        type: 'account_unlocked',
        userId: ben,
        username: 'ben',
        detail: 'by Ada: forgot phone',
      });
      await log.record({
        type: 'account_sessions_ended',
        userId: ben,
        username: 'ben',
        detail: 'by Ada (2 sessions ended): lost laptop',
      });
      await log.record({
        type: 'account_unlocked',
        userId: ben,
        username: 'ben',
        detail: 'by Adam: by Ada: quoted',
      });
      await harness.peer.pseudonymizeAccount({ userId: ada, username: 'Ada' }, 'deleted:00aa');
      const details = (await log.forUser(ben, new Date(0))).map((event) => event.detail).reverse();
      expect(details).toEqual([
        'by deleted:00aa: forgot phone',
        'by deleted:00aa (2 sessions ended): lost laptop',
        'by Adam: by Ada: quoted',
      ]);
    });

    it('keeps an event of an account deleted a moment ago, without its id and its name', async () => {
      // A request of the account still in flight when it was deleted (its id is no account now).
      await log.record({ type: 'logout', userId: 987_654, username: 'gone', ip: '203.0.113.7' });
      const [event] = await harness.peer.recent(1);
      expect(event).toMatchObject({ type: 'logout', userId: null, username: null, ip: '203.0.113.7' });
    });
  });
}
