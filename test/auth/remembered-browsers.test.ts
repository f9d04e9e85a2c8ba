import { createHash } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createRememberedBrowsers,
  MAX_REMEMBERED_BROWSERS,
  type RememberedBrowsers,
} from '../../src/auth/remembered-browsers.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createSqlRememberedBrowserStore } from '../../src/stores/sql/remembered-browser-store.js';
import { createSqlUserStore } from '../../src/stores/sql/user-store.js';
import type { User, UserStore } from '../../src/users/store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { setCookieHeaders } from '../helpers/expectations.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

const FIREFOX_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const DAY_MS = 24 * 60 * 60_000;

/** "name=value" as the browser sends it back. */
const sentBack = (setCookie: string) => setCookie.split(';')[0]!;

/**
 * The remembered-browser cookie and its rules (src/auth/remembered-browsers.ts), on a real SQLite
 * store. Threats: a cookie copied off the machine and used again; a token of one account used to
 * skip the code of another; a token kept past its 30 days or after it was forgotten.
 */
describe('remembered browsers', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let users: UserStore;
  let ada: User;
  let bo: User;

  const build = (isProduction = false) =>
    createRememberedBrowsers({
      store: createSqlRememberedBrowserStore(sql.database, clock),
      users,
      audit: createSqlAuditLog(sql.database, clock),
      clock,
      isProduction,
    });

  /** The Set-Cookie headers of one request in which `work` runs with the request's cookie header. */
  async function inRequest(
    cookie: string | undefined,
    work: (req: express.Request, res: express.Response) => Promise<unknown>,
  ) {
    const app = express();
    let outcome: unknown;
    app.get('/', async (req, res) => {
      outcome = await work(req, res);
      res.end();
    });
    const call = request(app).get('/').set('User-Agent', FIREFOX_ON_WINDOWS);
    const res = await (cookie ? call.set('Cookie', cookie) : call);
    return { outcome, cookies: setCookieHeaders(res) };
  }

  const remember = async (browsers: RememberedBrowsers, user: User) =>
    (await inRequest(undefined, (req, res) => browsers.remember(req, res, user))).cookies[0]!;
  const redeem = (browsers: RememberedBrowsers, cookie: string, user: User) =>
    inRequest(cookie, (req, res) => browsers.redeem(req, res, user));

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    users = createSqlUserStore(sql.database, clock);
    const make = (username: string, phone: string) =>
      users.create({ username, passwordHash: 'hash', phone, preferredChannel: 'sms' });
    ada = (await make('ada', '+12025550160'))!;
    bo = (await make('bo', '+12025550161'))!;
  });
  afterEach(() => sql.close());

  it('sets a 256-bit token in an HttpOnly, SameSite=Lax cookie for 30 days, and stores only its SHA-256', async () => {
    const cookie = await remember(build(), ada);
    expect(cookie).toMatch(/^keyhole\.remember=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/; Max-Age=2592000;/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).not.toMatch(/; Secure/);
    expect(cookie).not.toMatch(/; Domain=/i);
    const token = sentBack(cookie).split('=')[1]!;
    const rows = await sql.database.db.selectFrom('remembered_browsers').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: ada.id,
      token_hash: createHash('sha256').update(token).digest('hex'),
      label: 'Firefox on Windows',
    });
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it('is a Secure __Host- cookie, without a Domain, in production', async () => {
    const cookie = await remember(build(true), ada);
    expect(cookie).toMatch(/^__Host-keyhole\.remember=/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/; Domain=/i);
  });

  it('lets its own account skip the code once per token: each use rotates it, and the old value is void', async () => {
    // Threat: a copy of the cookie used after its owner used it (or the other way round).
    const browsers = build();
    const first = sentBack(await remember(browsers, ada));
    const used = await redeem(browsers, first, ada);
    expect(used.outcome).toBe(true);
    const second = sentBack(used.cookies[0]!);
    expect(second).toMatch(/^keyhole\.remember=[A-Za-z0-9_-]{43}$/);
    expect(second).not.toBe(first);

    const replayed = await redeem(browsers, first, ada);
    expect(replayed.outcome).toBe(false);
    expect(replayed.cookies[0]).toMatch(/^keyhole\.remember=;/);
    expect((await redeem(browsers, second, ada)).outcome).toBe(true);
  });

  it('never skips the code of another account, and leaves that account’s cookie in place', async () => {
    const browsers = build();
    const adas = sentBack(await remember(browsers, ada));
    const tried = await redeem(browsers, adas, bo);
    expect(tried.outcome).toBe(false);
    expect(tried.cookies).toEqual([]);
    expect((await redeem(browsers, adas, ada)).outcome).toBe(true);
  });

  it('expires 30 days after it was remembered, however often it was used', async () => {
    const browsers = build();
    let cookie = sentBack(await remember(browsers, ada));
    clock.advance(29 * DAY_MS);
    const used = await redeem(browsers, cookie, ada);
    expect(used.outcome).toBe(true);
    // The new cookie lasts only what is left of the 30 days.
    expect(used.cookies[0]).toMatch(/; Max-Age=86400;/);
    cookie = sentBack(used.cookies[0]!);
    clock.advance(DAY_MS);
    const late = await redeem(browsers, cookie, ada);
    expect(late.outcome).toBe(false);
    expect(late.cookies[0]).toMatch(/^keyhole\.remember=;/);
  });

  it('keeps at most 10 per account: the oldest is forgotten', async () => {
    const browsers = build();
    const cookies: string[] = [];
    for (let index = 0; index <= MAX_REMEMBERED_BROWSERS; index += 1) {
      cookies.push(sentBack(await remember(browsers, ada)));
      clock.advance(1000);
    }
    expect(await browsers.list(ada.id)).toHaveLength(10);
    expect((await redeem(browsers, cookies[0]!, ada)).outcome).toBe(false);
    for (const cookie of cookies.slice(1)) expect((await redeem(browsers, cookie, ada)).outcome).toBe(true);
  });

  it('forgets one, or all with the reason in the audit log', async () => {
    const browsers = build();
    const first = sentBack(await remember(browsers, ada));
    const second = sentBack(await remember(browsers, ada));
    const [newest] = await browsers.list(ada.id);
    expect(await browsers.revoke(bo.id, newest!.id)).toBe(false);
    expect(await browsers.revoke(ada.id, newest!.id)).toBe(true);
    expect((await redeem(browsers, second, ada)).outcome).toBe(false);

    expect(await browsers.revokeAll(ada.id, 'password changed')).toBe(1);
    expect((await redeem(browsers, first, ada)).outcome).toBe(false);
    const events = await createSqlAuditLog(sql.database, clock).forUser(ada.id, new Date(0));
    expect(events[0]).toMatchObject({
      type: 'remembered_browsers_revoked',
      username: 'ada',
      detail: '1 remembered browser: password changed',
    });
    expect(await browsers.revokeAll(ada.id, 'password changed')).toBe(0);
  });

  it.each(['keyhole.remember=short', 'keyhole.remember=%', `keyhole.remember=${'A'.repeat(44)}`])(
    'opens nothing with a malformed cookie, and clears it: %s',
    async (cookie) => {
      await remember(build(), ada);
      const tried = await redeem(build(), cookie, ada);
      expect(tried.outcome).toBe(false);
      expect(tried.cookies[0]).toMatch(/^keyhole\.remember=;/);
    },
  );

  it('does nothing without a cookie', async () => {
    const tried = await inRequest('other=1', (req, res) => build().redeem(req, res, ada));
    expect(tried).toEqual({ outcome: false, cookies: [] });
  });
});
