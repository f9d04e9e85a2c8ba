import { afterEach, describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import { consoleMessagesTo, createApiClient, createTestApiKey, expectApiProblem } from '../helpers/api.js';
import {
  createTestApp,
  lastConsoleCode,
  type TestApp,
  type TestAppOptions,
} from '../helpers/create-test-app.js';
import { expectRedirect } from '../helpers/expectations.js';
import { register, submitCode, submitPassword } from '../helpers/flows.js';

/**
 * The toll-fraud guard (issue 8) sees every code the API sends. Threat: an application holding a
 * key (or whoever stole it) pumping codes to premium numbers, or to one person's phone, at the
 * site's expense.
 */
describe('the verification API under the toll-fraud guard', () => {
  let site: TestApp;
  afterEach(() => site.close());

  async function start(options: TestAppOptions) {
    site = await createTestApp(options);
    return createApiClient(site.app, (await createTestApiKey(site, { name: 'shop' })).key);
  }

  it('refuses a number in a country codes may not go to (422), in the guard’s own words', async () => {
    const api = await start({ env: { SMS_COUNTRIES: 'US' } });
    const res = await api.send({ to: '+442079460000' });
    expect(expectApiProblem(res, 422, 'destination-refused').detail).toMatch(/United Kingdom/);
    expect(site.outbox.list()).toEqual([]);
    expect((await site.audit.recent(1))[0]).toMatchObject({
      type: 'code_send_refused',
      username: 'api:shop',
    });
  });

  it('stops at the site’s daily budget (429), whoever asks', async () => {
    const api = await start({ fraudLimits: 'defaults', env: { SEND_BUDGET_PER_DAY: '2' } });
    expect((await api.send({ to: '+12025550100' })).status).toBe(201);
    expect((await api.send({ to: '+12025550101' })).status).toBe(201);
    expectApiProblem(await api.send({ to: '+12025550102' }), 429, 'too-many-requests');
    expect(consoleMessagesTo(site, '+12025550102')).toBe(0);
  });

  it('counts API codes against the number’s common allowance, never its holder’s own', async () => {
    const api = await start({ fraudLimits: 'defaults' });
    const browser = createBrowser(site.app);
    const rosa = await register(browser, { username: 'rosa', phone: '+12025550150' });
    // Past the window her sign-up code counted in.
    site.clock.advanceMinutes(10);
    // Three codes in ten minutes is the number's common allowance: the fourth is refused.
    for (const label of ['a', 'b', 'c']) expect((await api.send({ to: rosa.phone, label })).status).toBe(201);
    expectApiProblem(await api.send({ to: rosa.phone, label: 'd' }), 429, 'too-many-requests');
    // Rosa, who proved the number, still gets her login code.
    expectRedirect(await submitPassword(browser, rosa), '/verify');
    expectRedirect(await submitCode(browser, lastConsoleCode(site.printed)), '/account');
  });

  it('counts a key by its own hourly limit, not by its servers’ address', async () => {
    const api = await start({ fraudLimits: 'defaults', env: { SEND_LIMIT_PER_ADDRESS_HOUR: '1' } });
    for (const to of ['+12025550100', '+12025550101', '+12025550102']) {
      expect((await api.send({ to })).status).toBe(201);
    }
  });
});
