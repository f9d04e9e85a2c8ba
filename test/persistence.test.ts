import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../src/stores/sql/migrations/index.js';
import { createBrowser } from './helpers/agent.js';
import { createTestClock } from './helpers/clock.js';
import { createTestApp, lastConsoleCode } from './helpers/create-test-app.js';
import { expectPage, expectRedirect, visibleText } from './helpers/expectations.js';
import { register, submitCode, submitPassword } from './helpers/flows.js';

describe('restarting the site on the same database file', () => {
  const folder = mkdtempSync(join(tmpdir(), 'mfa-restart-'));
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  it('keeps accounts, the audit log, last logins and signed-in sessions, and makes admins of listed accounts that exist by then', async () => {
    const databasePath = join(folder, 'app.db');
    const clock = createTestClock();
    // The README's order: register first, then list the name and restart.
    const first = await createTestApp({ databasePath, clock });
    const browser = createBrowser(first.app);
    const account = await register(browser, { username: 'dana' });
    await submitPassword(browser, account);
    expectRedirect(await submitCode(browser, lastConsoleCode(first.printed)), '/account');
    expectPage(await browser.get('/admin'), 403);
    expectPage(await browser.get('/account'), 200);
    const sessionCookie = browser.cookie('mfa.sid')!;
    await first.close();

    const second = await createTestApp({ databasePath, clock, env: { ADMIN_USERNAMES: 'dana' } });
    try {
      // The same browser is still signed in after the restart.
      const again = createBrowser(second.app);
      const page = await again.agent.get('/account').set('Cookie', sessionCookie);
      expectPage(page, 200, /dana/);
      // dana existed at this start, so ADMIN_USERNAMES made her an admin.
      expectPage(await again.agent.get('/admin').set('Cookie', sessionCookie), 200, /Confirm it is you/);

      // And the account can log in again, seeing when it last did.
      const fresh = createBrowser(second.app);
      await submitPassword(fresh, account);
      expectRedirect(await submitCode(fresh, lastConsoleCode(second.printed)), '/account');
      expect(visibleText((await fresh.get('/account')).text)).toMatch(/Previous login\s+\w{3}, 21 Nov 2026/);
      // Three sign-ins: the sign-up code, then a login on each start.
      expect((await second.audit.recent()).filter((event) => event.type === 'login_succeeded')).toHaveLength(
        3,
      );
      // Each migration ran once, on the first start.
      const recorded = await second.database.db.selectFrom('schema_migrations').select('name').execute();
      expect(recorded.map((row) => row.name)).toEqual(MIGRATIONS.map((migration) => migration.name));
    } finally {
      await second.close();
    }
  });
});
