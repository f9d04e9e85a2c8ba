import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, type Browser } from '../helpers/agent.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage } from '../helpers/expectations.js';
import { logIn, register } from '../helpers/flows.js';
import { byTable, openTracedSqliteDatabase, type TracedSqliteDatabase } from '../helpers/sql-trace.js';

/**
 * The signed-in page is the one every signed-in visit loads (issue 10): what it asks of the
 * database is specified here, table by table, on SQLite.
 */
describe('GET /account, on SQLite', () => {
  let traced: TracedSqliteDatabase;
  let site: TestApp;
  let browser: Browser;
  beforeEach(async () => {
    traced = await openTracedSqliteDatabase();
    site = await createTestApp({ database: traced.database });
    browser = createBrowser(site.app);
    await logIn(site, browser, await register(browser));
    // Whatever is made on first use is made by then.
    expectPage(await browser.get('/account'), 200, /Your account/);
  });
  afterEach(async () => {
    await site.close();
    await traced.close();
  });

  const recordAccountPage = () =>
    traced.record(async () => expectPage(await browser.get('/account'), 200, /Your account/));

  it('reads the session, the account and its recovery codes once each, and writes nothing', async () => {
    const page = await recordAccountPage();
    const { reads, writes, repeated } = byTable(page.ran);
    expect(reads).toEqual({ sessions: 1, users: 1, recovery_codes: 1 });
    expect(writes).toEqual({});
    expect(repeated).toEqual([]);
    expect(page.compiled).toEqual([]);
  });

  it('a minute on, writes the session once to record the activity, with a prepared query too', async () => {
    site.clock.advanceMinutes(1);
    const page = await recordAccountPage();
    const { reads, writes } = byTable(page.ran);
    expect(reads).toEqual({ sessions: 1, users: 1, recovery_codes: 1 });
    expect(writes).toEqual({ sessions: 1 });
    expect(page.compiled).toEqual([]);
  });
});
