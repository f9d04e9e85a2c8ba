import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrowser, csrfTokenIn, type Browser } from '../helpers/agent.js';
import { createTestApp, lastConsoleCode, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, expectRedirect } from '../helpers/expectations.js';
import { register, submitCode, submitPassword, wrongFor, type TestAccount } from '../helpers/flows.js';
import { byTable, openTracedSqliteDatabase, type TracedSqliteDatabase } from '../helpers/sql-trace.js';

/**
 * A wrong code is the request a guesser repeats as fast as the site answers (issue 10): what it
 * asks of the database is specified here, table by table, on SQLite. Nothing is kept between
 * requests to get there: each still reads the suspension afresh (another instance may have set it).
 */
describe('POST /verify with a wrong code, on SQLite', () => {
  let traced: TracedSqliteDatabase;
  let site: TestApp;
  let browser: Browser;
  let account: TestAccount;
  beforeEach(async () => {
    traced = await openTracedSqliteDatabase();
    site = await createTestApp({ database: traced.database });
    browser = createBrowser(site.app);
    account = await register(browser);
    expectRedirect(await submitPassword(browser, account), '/verify');
  });
  afterEach(async () => {
    await site.close();
    await traced.close();
  });

  /** What the database does for one POST /verify of `fields` alone (not the page loaded for its token). */
  async function recordPost(fields: Record<string, string>, expected: RegExp) {
    const token = csrfTokenIn((await browser.get('/verify')).text);
    return traced.record(async () => {
      const res = await browser.agent
        .post('/verify')
        .type('form')
        .send({ ...fields, _csrf: token });
      expectPage(res, 400, expected);
    });
  }

  /** A wrong code after a first one (whatever is made on first use is made by then). */
  async function recordSecondWrongCode() {
    const wrong = wrongFor(lastConsoleCode(site.printed));
    expectPage(await submitCode(browser, wrong), 400, /That code is not right/);
    return recordPost({ code: wrong }, /That code is not right\. 3 attempts left\./);
  }

  it('reads each row it needs once, the suspension too, and writes the attempt, the audit line and the run of wrong codes once each', async () => {
    const { reads, writes, repeated } = byTable((await recordSecondWrongCode()).ran);
    expect(reads).toEqual({
      sessions: 1,
      users: 1,
      challenges: 1,
      code_entry_failures: 1,
      issued_codes: 1,
      factors: 1,
      recovery_codes: 1,
    });
    expect(writes).toEqual({ challenges: 1, audit_events: 1, code_entry_failures: 1 });
    expect(repeated).toEqual([]);
  });

  it('runs only queries prepared before it: Kysely builds none for it', async () => {
    expect((await recordSecondWrongCode()).compiled).toEqual([]);
  });

  it('the wrong code that uses the code up closes it with a prepared query too, and reads the suspension once', async () => {
    const wrong = wrongFor(lastConsoleCode(site.printed));
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      expectPage(await submitCode(browser, wrong), 400, /That code is not right/);
    }
    const fifth = await recordPost({ code: wrong }, /Too many wrong attempts for this code/);
    const { reads, writes, repeated } = byTable(fifth.ran);
    expect(reads.code_entry_failures).toBe(1);
    expect(writes).toEqual({ challenges: 2, audit_events: 1, code_entry_failures: 1 });
    expect(repeated).toEqual([]);
    expect(fifth.compiled).toEqual([]);
  });

  it('a wrong recovery code reads the suspension once, and spends nothing with a query built for it', async () => {
    // A set of codes to guess at (as digests: none of them is the code typed below).
    await site.stores.recoveryCodes.replaceAll((await site.users.findByUsername(account.username))!.id, [
      'a'.repeat(64),
      'b'.repeat(64),
    ]);
    const guess = { method: 'recovery', recovery_code: 'ABCD-EFGH-JKMN-PQRS' };
    expectPage(await browser.submit('/verify', '/verify', guess), 400, /That recovery code is not right/);
    const second = await recordPost(guess, /That recovery code is not right/);
    const { reads, writes } = byTable(second.ran);
    expect(reads.code_entry_failures).toBe(1);
    expect(writes).toEqual({ recovery_codes: 1, audit_events: 1, code_entry_failures: 1 });
    expect(second.compiled).toEqual([]);
  });
});
