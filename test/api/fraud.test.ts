import { afterEach, describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import {
  consoleCodeTo,
  consoleMessagesTo,
  createApiClient,
  createTestApiKey,
  expectApiProblem,
} from '../helpers/api.js';
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

  it('stops API codes at half the site’s daily budget (429): the site’s own codes keep the other half', async () => {
    // Threat: one key spending the whole budget, after which sign-ups get no code site-wide.
    const api = await start({ fraudLimits: 'defaults', env: { SEND_BUDGET_PER_DAY: '4' } });
    expect((await api.send({ to: '+12025550100' })).status).toBe(201);
    expect((await api.send({ to: '+12025550101' })).status).toBe(201);
    const refused = await api.send({ to: '+12025550102' });
    expect(expectApiProblem(refused, 429, 'too-many-requests').detail).toMatch(/as many codes sent today/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(60);
    expect(consoleMessagesTo(site, '+12025550102')).toBe(0);
    expect((await site.audit.recent(5)).map((event) => event.type)).toContain('send_budget_spent');

    // The site's own sign-up codes still go out, up to the whole budget.
    await register(createBrowser(site.app), { username: 'rosa', phone: '+12025550150' });
    await register(createBrowser(site.app), { username: 'noor', phone: '+12025550151' });
    expect(consoleMessagesTo(site, '+12025550150')).toBe(1);
    expect(consoleMessagesTo(site, '+12025550151')).toBe(1);
  });

  describe('the per-key conversion check', () => {
    const newNumber = (i: number) => `+120255501${String(i).padStart(2, '0')}`;
    const VERIFIED = '+12025550199';

    it('pauses a key’s codes to never-verified numbers when few of its codes are approved', async () => {
      // Threat: SMS pumping through a key. Its sends come from one server address, so the
      // country breaker (one network per address) never trips on them.
      const logLines: string[] = [];
      const api = await start({ logLines });
      const verified = await api.send({ to: VERIFIED });
      const code = consoleCodeTo(site, VERIFIED);
      expect((await api.check(verified.body.id as string, code)).body.status).toBe('approved');

      for (let i = 0; i < 19; i += 1) {
        const sent = await api.send({ to: newNumber(i) });
        expect(sent.status, `${i}: ${sent.text}`).toBe(201);
      }
      // 20 sent to numbers nobody had verified (the first too, when it went), 1 approved of 20
      // (under a fifth): paused.
      const refused = await api.send({ to: newNumber(20) });
      expect(expectApiProblem(refused, 429, 'too-many-requests').detail).toMatch(/new numbers are paused/);
      expect(Number(refused.headers['retry-after'])).toBe(3600);
      expect(consoleMessagesTo(site, newNumber(20))).toBe(0);
      const [paused] = await site.audit.recent(1);
      expect(paused).toMatchObject({ type: 'sending_paused', username: 'api:shop' });
      expect(logLines.some((line) => line.includes('"level":50') && line.includes('conversion'))).toBe(true);

      // A number that completed a code still gets one; another key is not paused.
      expect((await api.send({ to: VERIFIED, label: 'again' })).status).toBe(201);
      const other = createApiClient(site.app, (await createTestApiKey(site, { name: 'other' })).key);
      expect((await other.send({ to: newNumber(21) })).status).toBe(201);

      // An hour and more later, the key's codes to new numbers go again.
      site.clock.advanceMinutes(121);
      expect((await api.send({ to: newNumber(22) })).status).toBe(201);
    });

    it('never pauses a key whose codes are completed', async () => {
      const api = await start({});
      for (let i = 0; i < 30; i += 1) {
        const res = await api.send({ to: newNumber(i) });
        expect(res.status, res.text).toBe(201);
        if (i % 4 === 0) {
          const checked = await api.check(res.body.id as string, consoleCodeTo(site, newNumber(i)));
          expect(checked.body.status).toBe('approved');
        }
      }
    });
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
