import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import type { FraudGuard } from '../../src/fraud/index.js';
import type { SendAttempt, SendDecision } from '../../src/fraud/send-guard.js';
import { clientKeyOf } from '../../src/http/client-address.js';
import { createMemoryRateLimitStore, type RateLimitStore } from '../../src/http/rate-limit.js';
import { createSqlAuditLog } from '../../src/stores/sql/audit-log.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import {
  australianNumber,
  buildFraudGuard,
  capturingLogger,
  fraudConfigFrom,
  usNumber,
} from '../helpers/fraud.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

// Fictional numbers only: +1 202 555 01xx (US), +1 613 555 01xx (Canada), Ofcom's drama range
// +44 20 7946 0xxx (UK), ACMA's +61 2 5550 xxxx (Australia), and libphonenumber's own example of
// a UK VoIP number.
const US = usNumber(42);
const CANADA = '+16135550142';
const UK = '+442079460142';
const UK_VOIP = '+445612345678';
const FRANCE = '+33612345678';
// The International Networks range of +882 (no country): a classic toll-fraud destination.
const NO_COUNTRY_NUMBER = '+882345678901';

/** For the tests of other rules: codes to new US numbers would otherwise trip the breaker first. */
const WITHOUT_BREAKER = { SEND_BREAKER_MIN_PER_DAY: '1000' };

describe('the send guard', () => {
  let sql: TestSqlDatabase;
  let clock: TestClock;
  let audit: AuditLog;
  let logLines: string[];
  let guard: FraudGuard;

  /** A guard with the defaults, and these variables on top. */
  function build(
    env: Record<string, string> = {},
    limits: RateLimitStore = createMemoryRateLimitStore(clock),
  ) {
    guard = buildFraudGuard({
      database: sql.database,
      clock,
      limits,
      audit,
      config: fraudConfigFrom(env),
      logger: capturingLogger(logLines),
    });
  }

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    audit = createSqlAuditLog(sql.database, clock);
    logLines = [];
    build(WITHOUT_BREAKER);
  });
  afterEach(() => sql.close());

  let nextUser = 1;
  /** A fresh account (the audit log names accounts that exist). */
  async function newAccount(): Promise<number> {
    const id = nextUser++;
    await sql.database.db
      .insertInto('users')
      .values({
        id,
        username: `user${id}`,
        username_key: `user${id}`,
        password_hash: 'x',
        phone_e164: US,
        preferred_channel: 'sms',
        created_at: 0,
      })
      .execute();
    return id;
  }

  /** A code for a fresh account unless told otherwise; sent means confirmed, as the service does. */
  async function send(overrides: Partial<SendAttempt> = {}): Promise<SendDecision> {
    const decision = await guard.sends.reserveSend({
      userId: await newAccount(),
      to: US,
      clientKey: '192.0.2.1',
      channel: 'sms',
      scope: 'login',
      ...overrides,
    });
    if (decision.allowed) await decision.confirm();
    return decision;
  }
  async function sendTimes(times: number, overrides: (i: number) => Partial<SendAttempt>) {
    const decisions: SendDecision[] = [];
    for (let i = 0; i < times; i += 1) decisions.push(await send(overrides(i)));
    return decisions;
  }
  const allowedCount = (decisions: SendDecision[]) => decisions.filter((decision) => decision.allowed).length;
  const refusal = (decision: SendDecision) => {
    if (decision.allowed) throw new Error('expected a refusal');
    return decision;
  };
  /** A number that completed a code recently is exempt from the budget and the breaker. */
  const markVerified = async (to: string, userId?: number) =>
    guard.sends.recordVerified({ to, userId: userId ?? (await newAccount()) });

  describe('per destination number, across all accounts', () => {
    it('allows 3 codes in 10 minutes, whoever asks and from wherever, then refuses until the window ends', async () => {
      const decisions = await sendTimes(4, (i) => ({ clientKey: `192.0.2.${i + 1}` }));

      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
      expect(refusal(decisions[3]!)).toMatchObject({ rule: 'number_10min', retryAfterSeconds: 600 });
      // Other numbers are not held.
      expect((await send({ to: usNumber(43) })).allowed).toBe(true);
      clock.advanceMinutes(10);
      expect((await send({ clientKey: '192.0.2.99' })).allowed).toBe(true);
    });

    it('allows 10 codes in a day', async () => {
      const decisions: SendDecision[] = [];
      for (let i = 0; i < 11; i += 1) {
        decisions.push(await send({ clientKey: `192.0.2.${i + 1}` }));
        clock.advanceMinutes(11);
      }
      expect(allowedCount(decisions)).toBe(10);
      expect(refusal(decisions[10]!).rule).toBe('number_day');
    });
  });

  describe('per destination number, for an account that completed a code to it', () => {
    // The threat: a stranger who knows someone's number registers an account with it (3 accounts
    // may share a number) and asks for codes until the number's allowance is gone, locking its
    // owner out of logging in for a day.
    const STRANGER_ADDRESS = '198.51.100.9';

    it("keeps the holder's own allowance when a stranger's account has used up the number's", async () => {
      const holder = await newAccount();
      await markVerified(US, holder);
      const stranger = await newAccount();
      const strangerSends: SendDecision[] = [];
      for (let i = 0; i < 11; i += 1) {
        strangerSends.push(await send({ userId: stranger, clientKey: STRANGER_ADDRESS }));
        clock.advanceMinutes(4);
      }
      expect(allowedCount(strangerSends)).toBe(10);

      const holderSends = await sendTimes(4, () => ({ userId: holder, clientKey: '192.0.2.1' }));

      expect(holderSends.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
      expect(refusal(holderSends[3]!).rule).toBe('number_10min');
    });

    it("still holds strangers to the number's common allowance, which the holder's codes count towards", async () => {
      const holder = await newAccount();
      await markVerified(US, holder);
      expect(allowedCount(await sendTimes(2, () => ({ userId: holder })))).toBe(2);

      const strangers = await sendTimes(3, (i) => ({ clientKey: `198.51.100.${i + 1}` }));

      // 3 codes in 10 minutes reach the phone from everyone but the holder's own, whoever asks.
      expect(strangers.map((decision) => decision.allowed)).toEqual([true, false, false]);
      expect(refusal(strangers[1]!).rule).toBe('number_10min');
    });

    it('tells the service whether the account has shown it holds the phone', async () => {
      const holder = await newAccount();
      await markVerified(US, holder);
      expect(await send({ userId: holder })).toMatchObject({ allowed: true, provenHolder: true });
      expect(await send({ clientKey: '192.0.2.2' })).toMatchObject({ allowed: true, provenHolder: false });
    });
  });

  describe('per client address', () => {
    it('allows 10 codes an hour, then refuses for the rest of the hour', async () => {
      const decisions = await sendTimes(11, (i) => ({ to: usNumber(i) }));

      expect(allowedCount(decisions)).toBe(10);
      expect(refusal(decisions[10]!)).toMatchObject({ rule: 'address_hour', retryAfterSeconds: 3600 });
      expect((await send({ to: usNumber(50), clientKey: '192.0.2.2' })).allowed).toBe(true);
    });

    it('allows 30 codes a day', async () => {
      const decisions: SendDecision[] = [];
      for (let hour = 0; hour < 4; hour += 1) {
        decisions.push(...(await sendTimes(10, (i) => ({ to: usNumber(hour * 10 + i) }))));
        clock.advanceMinutes(61);
      }
      expect(allowedCount(decisions)).toBe(30);
      expect(refusal(decisions[30]!).rule).toBe('address_day');
    });

    it('counts an IPv6 /48 as a whole too, at five times the limits of one /64', async () => {
      // The threat: one /48 (a tunnel broker hands them out free) holds 65,536 /64s, each with
      // budgets of its own.
      const fromOneSlash48 = await sendTimes(51, (i) => ({
        to: usNumber(i),
        clientKey: clientKeyOf(`2001:db8:abcd:${(i + 1).toString(16)}::1`),
      }));

      expect(allowedCount(fromOneSlash48)).toBe(50);
      expect(refusal(fromOneSlash48[50]!)).toMatchObject({ rule: 'network_hour', retryAfterSeconds: 3600 });
      expect((await send({ to: usNumber(60), clientKey: clientKeyOf('2001:db8:abce:1::1') })).allowed).toBe(
        true,
      );
    });

    it('allows at most 3 destination countries a day; more codes to those countries still go', async () => {
      const decisions = await sendTimes(4, (i) => ({ to: [US, CANADA, UK, australianNumber(1)][i]! }));

      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
      expect(refusal(decisions[3]!).rule).toBe('address_countries');
      expect((await send({ to: usNumber(7) })).allowed).toBe(true);
      expect((await send({ to: australianNumber(1), clientKey: '192.0.2.2' })).allowed).toBe(true);
    });
  });

  describe('countries per address, when sends to one country overlap', () => {
    // Threat: an address whose first send to a country is refused, or fails, just after a second
    // send to that country joined it gets the second's code out with the country no longer
    // counted, and every later send there joins without counting: one more country each time.
    const ADDRESS = '203.0.113.50';
    const from = (to: string) => send({ to, clientKey: ADDRESS });
    const reserve = async (to: string) => {
      const decision = await guard.sends.reserveSend({
        userId: await newAccount(),
        to,
        clientKey: ADDRESS,
        channel: 'sms',
        scope: 'login',
      });
      if (!decision.allowed) throw new Error('expected the send to be allowed');
      return decision;
    };
    const nextCountries = async () => [await from(CANADA), await from(UK), await from(FRANCE)];

    /** The store's key for the countries the address's sends hold today. */
    const HELD_COUNTRIES = 'fraud:send:address:held-countries:';

    /** A memory store whose first hand-back of a country the address held waits until `letGo`. */
    function storeHoldingFirstCountryHandBack() {
      const memory = createMemoryRateLimitStore(clock);
      let letGo!: () => void;
      const gate = new Promise<void>((resolve) => (letGo = resolve));
      let reached!: () => void;
      const held = new Promise<void>((resolve) => (reached = resolve));
      let holding = true;
      const limits: RateLimitStore = {
        ...memory,
        async releaseMember(key, member, window) {
          if (holding && key.startsWith(HELD_COUNTRIES)) {
            holding = false;
            reached();
            await gate;
          }
          return memory.releaseMember(key, member, window);
        },
      };
      return { limits, held, letGo };
    }

    it('still counts the country when its first send is refused after a second send joined it', async () => {
      const { limits, held, letGo } = storeHoldingFirstCountryHandBack();
      build(WITHOUT_BREAKER, limits);
      const FULL_NUMBER = usNumber(50);
      await sendTimes(3, (i) => ({ to: FULL_NUMBER, clientKey: `198.51.100.${i + 1}` }));

      const refused = send({ to: FULL_NUMBER, clientKey: ADDRESS });
      await held; // counted to the US, refused by the number's limit, handing back
      expect((await from(usNumber(51))).allowed).toBe(true);
      letGo();
      expect(refusal(await refused).rule).toBe('number_10min');

      const decisions = await nextCountries();
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, false]);
      expect(refusal(decisions[2]!).rule).toBe('address_countries');
    });

    it('still counts the country when its first send fails after a second send to it was allowed', async () => {
      const first = await reserve(US);
      expect((await from(usNumber(51))).allowed).toBe(true);
      await first.release();

      const decisions = await nextCountries();
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, false]);
      expect(refusal(decisions[2]!).rule).toBe('address_countries');
    });

    /** A memory store that can hold back its next answer about the address's countries until `letGo`. */
    function storeDelayingCountriesAnswer() {
      const memory = createMemoryRateLimitStore(clock);
      let pending: { reached: () => void; gate: Promise<void> } | null = null;
      const delayed =
        <Args extends unknown[], Answer>(call: (key: string, ...args: Args) => Promise<Answer>) =>
        async (key: string, ...args: Args) => {
          const answer = await call(key, ...args);
          if (pending && key.startsWith(HELD_COUNTRIES)) {
            const { reached, gate } = pending;
            pending = null;
            reached();
            await gate;
          }
          return answer;
        };
      const limits: RateLimitStore = { ...memory, holdMember: delayed(memory.holdMember) };
      return {
        limits,
        /** The store has answered the next send asking; the send has not heard yet. */
        delayNextAnswer() {
          let letGo!: () => void;
          const gate = new Promise<void>((resolve) => (letGo = resolve));
          const reached = new Promise<void>((resolve) => (pending = { reached: resolve, gate }));
          return { reached, letGo };
        },
      };
    }

    it('refuses a send that joins a country beyond the limit while its first send is still being counted', async () => {
      // Threat: a second send to a fourth country, joining the first before the first has heard
      // that the country is over the limit, got its code out while the first was refused: one
      // message to a country beyond the limit per pair of sends.
      const { limits, delayNextAnswer } = storeDelayingCountriesAnswer();
      build(WITHOUT_BREAKER, limits);
      expect((await nextCountries()).map((decision) => decision.allowed)).toEqual([true, true, true]);

      const { reached, letGo } = delayNextAnswer();
      const first = from(australianNumber(1));
      await reached;
      const joiner = await from(australianNumber(2));
      letGo();
      const decisions = [await first, joiner];

      expect(decisions.map((decision) => decision.allowed)).toEqual([false, false]);
      expect(decisions.map((decision) => refusal(decision).rule)).toEqual([
        'address_countries',
        'address_countries',
      ]);
    });

    it('hands the country back once every send to it has failed', async () => {
      const first = await reserve(US);
      const second = await reserve(usNumber(51));
      await first.release();
      await second.release();

      const decisions = [...(await nextCountries()), await from(australianNumber(1))];
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
    });
  });

  it('never lets a fourth country in by the drift of windows: countries count per UTC day', async () => {
    // An attack review found a country "seen" in its own 24-hour window while the count of
    // countries had started afresh: a fourth country in one day.
    const from = (to: string) => send({ to, clientKey: '203.0.113.8' });
    expect((await from(australianNumber(1))).allowed).toBe(true); // 10:00 UTC
    clock.advanceMinutes(10 * 60);
    expect((await from(US)).allowed).toBe(true); // 20:00 UTC
    clock.advanceMinutes(15 * 60); // 11:00 UTC the next day

    const nextDay = [await from(UK), await from(CANADA), await from(FRANCE), await from(US)];

    expect(nextDay.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
    expect(refusal(nextDay[3]!).rule).toBe('address_countries');
  });

  it('counts a voice call like an SMS', async () => {
    const decisions = await sendTimes(4, (i) => ({ channel: i % 2 === 0 ? 'voice' : 'sms' }));
    expect(allowedCount(decisions)).toBe(3);
  });

  it('hands everything back when the code does not go out, so a failed send costs nothing', async () => {
    for (let i = 0; i < 3; i += 1) {
      const decision = await guard.sends.reserveSend({
        userId: await newAccount(),
        to: US,
        clientKey: '192.0.2.1',
        channel: 'sms',
        scope: 'login',
      });
      if (!decision.allowed) throw new Error('expected the send to be allowed');
      await decision.release();
    }
    expect(allowedCount(await sendTimes(3, () => ({})))).toBe(3);
  });

  describe('a send that fails on its way (a store away, an audit write failing)', () => {
    // Threat: a send that never went out keeping the number's counts, or the address's country,
    // until their windows end: the number's owner refused codes for 10 minutes or a day, everyone
    // behind the address refused a country until midnight.
    it('hands back the counts it took when the country cannot be held', async () => {
      const memory = createMemoryRateLimitStore(clock);
      let failing = true;
      build(WITHOUT_BREAKER, {
        ...memory,
        async holdMember(...args) {
          if (failing) {
            failing = false;
            throw new Error('the store is away');
          }
          return memory.holdMember(...args);
        },
      });
      await expect(send({ clientKey: '192.0.2.1' })).rejects.toThrow('the store is away');
      // The number's 3 codes in 10 minutes are all still there.
      const decisions = await sendTimes(3, (i) => ({ clientKey: `192.0.2.${i + 2}` }));
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true]);
    });

    it('hands back the counts it took when the store fails some of them', async () => {
      const memory = createMemoryRateLimitStore(clock);
      let failing = true;
      build(WITHOUT_BREAKER, {
        ...memory,
        async increment(key, windowMs) {
          // The address's hourly count fails; the number's counts, taken at once, succeed.
          if (failing && key.includes(':address:') && !key.includes('countries')) {
            failing = false;
            throw new Error('the store is away');
          }
          return memory.increment(key, windowMs);
        },
      });
      await expect(send({ clientKey: '192.0.2.1' })).rejects.toThrow('the store is away');
      const decisions = await sendTimes(3, (i) => ({ clientKey: `192.0.2.${i + 2}` }));
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true]);
    });

    it('hands back the counts and country of a refused send whose refusal cannot be noted', async () => {
      const ADDRESS = '203.0.113.60';
      for (const to of [US, CANADA, UK]) expect((await send({ to, clientKey: ADDRESS })).allowed).toBe(true);
      let failing = true;
      const record = audit.record.bind(audit);
      audit.record = async (...args) => {
        if (failing) {
          failing = false;
          throw new Error('the audit log is away');
        }
        return record(...args);
      };
      const fourth = australianNumber(3);
      await expect(send({ to: fourth, clientKey: ADDRESS })).rejects.toThrow('the audit log is away');
      // The fourth country's number lost none of its 3 codes in 10 minutes to the failed send.
      const decisions = await sendTimes(3, (i) => ({ to: fourth, clientKey: `192.0.2.${i + 20}` }));
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true]);
    });

    it('hands back the country it held, and its counts, when a later step fails', async () => {
      const ADDRESS = '203.0.113.61';
      const memory = createMemoryRateLimitStore(clock);
      let breakerFails = false;
      build(WITHOUT_BREAKER, {
        ...memory,
        async get(key) {
          // The conversion breaker reads its counts after the country is held.
          if (breakerFails) {
            breakerFails = false;
            throw new Error('the store is away');
          }
          return memory.get(key);
        },
      });
      for (const to of [US, CANADA]) expect((await send({ to, clientKey: ADDRESS })).allowed).toBe(true);
      breakerFails = true;
      await expect(send({ to: UK, clientKey: ADDRESS })).rejects.toThrow('the store is away');
      // Its place among the address's 3 countries is free again, for another country.
      expect((await send({ to: australianNumber(4), clientKey: ADDRESS })).allowed).toBe(true);
      expect(refusal(await send({ to: UK, clientKey: ADDRESS })).rule).toBe('address_countries');
    });
  });

  it('hands a failed send back to the windows it was counted in, never to the next ones', async () => {
    // Threat: a provider slow to fail near the end of the number's 10 minutes handing its count to
    // the next 10 minutes: a fourth code to the number there.
    expect((await send({ clientKey: '192.0.2.1' })).allowed).toBe(true);
    clock.advance(10 * 60_000 - 1_000);
    const late = await guard.sends.reserveSend({
      userId: await newAccount(),
      to: US,
      clientKey: '192.0.2.2',
      channel: 'sms',
      scope: 'login',
    });
    if (!late.allowed) throw new Error('expected the send to be allowed');
    // The provider fails two seconds later, after a code to the number opened the next 10 minutes.
    clock.advance(2_000);
    expect((await send({ clientKey: '192.0.2.3' })).allowed).toBe(true);
    await late.release();

    const decisions = await sendTimes(3, (i) => ({ clientKey: `192.0.2.${i + 4}` }));
    expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, false]);
    expect(refusal(decisions[2]!).rule).toBe('number_10min');
  });

  it('stops parallel sends at the limit: of 10 at once to one number, exactly 3 are allowed', async () => {
    const decisions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => send({ clientKey: `198.51.100.${i + 1}` })),
    );
    expect(allowedCount(decisions)).toBe(3);
  });

  describe('countries and VoIP', () => {
    it('refuses a number outside SMS_COUNTRIES with a message naming its country', async () => {
      build({ ...WITHOUT_BREAKER, SMS_COUNTRIES: 'US,CA' });

      const decision = refusal(await send({ to: UK }));

      expect(decision).toMatchObject({ rule: 'country' });
      expect('message' in decision && decision.message).toBe(
        'Codes cannot be sent to numbers in United Kingdom from this site. Use a number from another country.',
      );
      expect((await send({ to: CANADA })).allowed).toBe(true);
    });

    it('leaves numbers of no country (+881, +882, +883...) out of *, and sends to them only when ZZ is listed', async () => {
      build({ ...WITHOUT_BREAKER, SMS_COUNTRIES: '*' });
      const refused = refusal(await send({ to: NO_COUNTRY_NUMBER }));
      expect(refused).toMatchObject({ rule: 'country' });
      expect('message' in refused && refused.message).toBe(
        'Codes cannot be sent to numbers in that network from this site. Use a number from another country.',
      );

      build({ ...WITHOUT_BREAKER, SMS_COUNTRIES: 'US,ZZ' });
      expect((await send({ to: NO_COUNTRY_NUMBER })).allowed).toBe(true);
    });

    it('refuses VoIP numbers unless ALLOW_VOIP_NUMBERS=true', async () => {
      expect(refusal(await send({ to: UK_VOIP }))).toMatchObject({ rule: 'voip' });
      build({ ...WITHOUT_BREAKER, ALLOW_VOIP_NUMBERS: 'true' });
      expect((await send({ to: UK_VOIP })).allowed).toBe(true);
    });
  });

  describe('the daily budget', () => {
    beforeEach(() => build({ ...WITHOUT_BREAKER, SEND_BUDGET_PER_DAY: '5' }));

    it('once spent, codes go only to numbers that completed a code before, until midnight UTC', async () => {
      await markVerified(usNumber(90));
      const decisions = await sendTimes(5, (i) => ({ to: usNumber(i), clientKey: `192.0.2.${i + 1}` }));
      expect(allowedCount(decisions)).toBe(5);

      const stranger = refusal(await send({ to: usNumber(10), clientKey: '192.0.2.50' }));
      expect(stranger.rule).toBe('budget');
      // The clock starts at 10:00 UTC: 14 hours to midnight.
      expect('retryAfterSeconds' in stranger && stranger.retryAfterSeconds).toBe(14 * 3600);
      expect((await send({ to: usNumber(90), clientKey: '192.0.2.51' })).allowed).toBe(true);

      clock.advanceMinutes(14 * 60);
      expect((await send({ to: usNumber(11), clientKey: '192.0.2.52' })).allowed).toBe(true);
    });

    it('stops even numbers that completed a code at twice the budget', async () => {
      await markVerified(usNumber(90));
      // Each from its own address and, past the number's day limit, to its own verified number.
      for (let i = 0; i < 5; i += 1) await send({ to: usNumber(i), clientKey: `192.0.2.${i + 1}` });
      const verifiedSends: SendDecision[] = [];
      for (let i = 0; i < 6; i += 1) {
        const to = usNumber(90 + i);
        await markVerified(to);
        verifiedSends.push(await send({ to, clientKey: `192.0.2.${20 + i}` }));
      }

      expect(verifiedSends.map((decision) => decision.allowed)).toEqual([
        true,
        true,
        true,
        true,
        true,
        false,
      ]);
      expect(refusal(verifiedSends[5]!).rule).toBe('budget');
    });

    it('lets the exemption lapse 30 days after the number last completed a code', async () => {
      await markVerified(usNumber(90));
      clock.advanceMinutes(30 * 24 * 60 + 1);
      await sendTimes(5, (i) => ({ to: usNumber(i), clientKey: `192.0.2.${i + 1}` }));

      expect(refusal(await send({ to: usNumber(90), clientKey: '192.0.2.51' })).rule).toBe('budget');
    });

    it('still sends to the account that completed a code to its number, however long ago, up to the ceiling', async () => {
      const owner = await newAccount();
      await markVerified(usNumber(91), owner);
      clock.advanceMinutes(40 * 24 * 60);
      await sendTimes(5, (i) => ({ to: usNumber(i), clientKey: `192.0.2.${i + 1}` }));

      expect((await send({ userId: owner, to: usNumber(91), clientKey: '192.0.2.61' })).allowed).toBe(true);
      expect(refusal(await send({ to: usNumber(91), clientKey: '192.0.2.62' })).rule).toBe('budget');
    });

    it('says it again with the next send when the audit log could not take it', async () => {
      let failing = false;
      const record = audit.record.bind(audit);
      audit.record = async (event) => {
        if (failing && event.type === 'send_budget_spent') {
          failing = false;
          throw new Error('the audit log is away');
        }
        return record(event);
      };
      const sends = await sendTimes(4, (i) => ({ to: usNumber(i), clientKey: `192.0.2.${i + 1}` }));
      expect(allowedCount(sends)).toBe(4);
      failing = true;
      // The fifth spends the budget; its notice fails, and the send with it (a 503 for its person).
      await expect(send({ to: usNumber(4), clientKey: '192.0.2.5' })).rejects.toThrow(
        'the audit log is away',
      );
      expect((await send({ to: usNumber(5), clientKey: '192.0.2.6' })).allowed).toBe(true);
      expect((await audit.recent()).filter((event) => event.type === 'send_budget_spent')).toHaveLength(1);
    });

    it('tells the operator once, at error level and in the audit log, when it is spent', async () => {
      await sendTimes(8, (i) => ({ to: usNumber(i), clientKey: `192.0.2.${i + 1}` }));

      const errors = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0].msg).toMatch(/daily send budget \(SEND_BUDGET_PER_DAY\) is spent/);
      expect((await audit.recent()).filter((event) => event.type === 'send_budget_spent')).toHaveLength(1);
    });
  });

  describe('the conversion breaker', () => {
    beforeEach(() => build());
    // Each code from its own address and to its own number, so only the breaker can refuse.
    let n = 0;
    const newAustralian = () => send({ to: australianNumber(n), clientKey: `203.0.113.${++n % 250}` });

    it('pauses codes to never-verified numbers of a country for an hour after more than 3 in an hour', async () => {
      const decisions = [
        await newAustralian(),
        await newAustralian(),
        await newAustralian(),
        await newAustralian(),
      ];

      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
      expect(refusal(decisions[3]!)).toMatchObject({ rule: 'breaker', retryAfterSeconds: 3600 });
      // Paused for the hour, whatever the number.
      clock.advanceMinutes(59);
      expect((await newAustralian()).allowed).toBe(false);
      clock.advanceMinutes(1);
      expect((await newAustralian()).allowed).toBe(true);
    });

    it('leaves numbers that completed a code before, and other countries, alone while paused', async () => {
      await markVerified(australianNumber(9000));
      for (let i = 0; i < 4; i += 1) await newAustralian();

      expect((await send({ to: australianNumber(9000), clientKey: '203.0.113.251' })).allowed).toBe(true);
      expect((await send({ to: usNumber(1), clientKey: '203.0.113.252' })).allowed).toBe(true);
    });

    it('allows 20 a day to never-verified numbers when a country has no history, spread over the hours', async () => {
      const decisions: SendDecision[] = [];
      for (let hour = 0; hour < 8; hour += 1) {
        for (let i = 0; i < 3; i += 1) decisions.push(await newAustralian());
        clock.advanceMinutes(60);
      }
      expect(allowedCount(decisions)).toBe(20);
      expect(refusal(decisions[20]!).rule).toBe('breaker');
    });

    it("scales with the country's best day of verified codes in the last 14 days: max(20, 20% of it)", async () => {
      // 200 verified codes in Australia ten days ago: 40 a day and 6 an hour for new numbers.
      for (let i = 0; i < 200; i += 1) await markVerified(australianNumber(5000 + i));
      clock.advanceMinutes(10 * 24 * 60);

      const decisions: SendDecision[] = [];
      for (let i = 0; i < 7; i += 1) decisions.push(await newAustralian());
      expect(allowedCount(decisions)).toBe(6);
      expect(await guard.sends.breaker.thresholds('AU')).toEqual({ perDay: 40, perHour: 6 });

      // Fifteen days after that best day, it no longer counts.
      clock.advanceMinutes(5 * 24 * 60);
      expect(await guard.sends.breaker.thresholds('AU')).toEqual({ perDay: 20, perHour: 3 });
    });

    it('counts only codes that went out: sends handed back never pause a country', async () => {
      // The threat: sends that the provider refuses (a landline for SMS, say) cost nothing, yet
      // were counted, pausing every new user of the country with no code delivered.
      for (let i = 0; i < 4; i += 1) {
        const decision = await guard.sends.reserveSend({
          userId: await newAccount(),
          to: australianNumber(100 + i),
          clientKey: `203.0.113.${200 + i}`,
          channel: 'sms',
          scope: 'login',
        });
        if (!decision.allowed) throw new Error('expected the send to be allowed');
        await decision.release();
      }

      expect((await newAustralian()).allowed).toBe(true);
      expect(await guard.sends.breaker.pausedUntil('AU')).toBeNull();
    });

    it('is not asked about a send another rule refused', async () => {
      // One account, one number, four logins: the fourth is refused per number, and must not
      // also pause the country's new users.
      const evil = await newAccount();
      const attempts = await sendTimes(4, () => ({
        userId: evil,
        to: australianNumber(7),
        clientKey: '198.51.100.9',
      }));
      expect(attempts.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
      expect(refusal(attempts[3]!).rule).toBe('number_10min');

      expect((await newAustralian()).allowed).toBe(true);
      expect((await audit.recent()).some((event) => event.type === 'sending_paused')).toBe(false);
    });

    it('pauses only when codes to new numbers come from several networks: one address, or one /48, counts once an hour', async () => {
      const fromOneAddress = await sendTimes(8, (i) => ({
        to: australianNumber(200 + i),
        clientKey: '198.51.100.9',
      }));
      const fromOneSlash48 = await sendTimes(8, (i) => ({
        to: australianNumber(300 + i),
        clientKey: clientKeyOf(`2001:db8:abcd:${(i + 1).toString(16)}::1`),
      }));
      expect(allowedCount([...fromOneAddress, ...fromOneSlash48])).toBe(16);
      expect(await guard.sends.breaker.pausedUntil('AU')).toBeNull();

      // Two more networks, and the count passes 3 in an hour.
      const others = [await newAustralian(), await newAustralian()];
      expect(others.map((decision) => decision.allowed)).toEqual([true, false]);
      expect(refusal(others[1]!).rule).toBe('breaker');
    });

    it('counts numbers verified per day in its history, not codes: one number verified again and again does not raise it', async () => {
      const holder = await newAccount();
      for (let i = 0; i < 200; i += 1) await markVerified(australianNumber(9000), holder);

      expect(await guard.sends.breaker.thresholds('AU')).toEqual({ perDay: 20, perHour: 3 });
    });

    it('no longer exempts a number that last completed a code more than 30 days ago', async () => {
      await markVerified(australianNumber(9000));
      clock.advanceMinutes(31 * 24 * 60);
      for (let i = 0; i < 4; i += 1) await newAustralian();

      expect(refusal(await send({ to: australianNumber(9000), clientKey: '203.0.113.251' })).rule).toBe(
        'breaker',
      );
    });

    it('still sends to the account that completed a code to its number, however long ago', async () => {
      // Threat: four strangers' sign-ups pausing a country, and with it the login codes of everyone
      // there who has not logged in for a month.
      const owner = await newAccount();
      await markVerified(australianNumber(9100), owner);
      clock.advanceMinutes(40 * 24 * 60);
      for (let i = 0; i < 4; i += 1) await newAustralian();

      expect(
        (await send({ userId: owner, to: australianNumber(9100), clientKey: '203.0.113.252' })).allowed,
      ).toBe(true);
      // Another account on that number is a stranger to it: still paused.
      expect(refusal(await send({ to: australianNumber(9100), clientKey: '203.0.113.253' })).rule).toBe(
        'breaker',
      );
    });

    it('says so in the operator log and the audit log, once per pause', async () => {
      for (let i = 0; i < 6; i += 1) await newAustralian();

      const paused = (await audit.recent()).filter((event) => event.type === 'sending_paused');
      expect(paused).toHaveLength(1);
      expect(paused[0]!.detail).toMatch(
        /^Australia \(AU\): codes to never-verified numbers paused for an hour/,
      );
      expect(logLines.filter((line) => line.includes('paused for an hour'))).toHaveLength(1);
    });
  });

  describe('FRAUD_GUARD=record', () => {
    beforeEach(() => build({ FRAUD_GUARD: 'record', SMS_COUNTRIES: 'US,GB', SEND_BUDGET_PER_DAY: '2' }));

    it('refuses nothing, and audits, logs and counts every send that would have been refused, by rule', async () => {
      const decisions = [
        ...(await sendTimes(4, () => ({}))),
        await send({ to: CANADA }),
        await send({ to: UK_VOIP, clientKey: '192.0.2.9' }),
      ];

      expect(decisions.every((decision) => decision.allowed)).toBe(true);
      const flagged = (await audit.recent()).filter((event) => event.type === 'code_send_flagged');
      expect(flagged.map((event) => event.detail!.split(' (')[0])).toEqual(
        expect.arrayContaining([
          'codes per number in 10 minutes',
          'daily budget',
          'country not in SMS_COUNTRIES',
          'VoIP number',
        ]),
      );
      expect((await audit.recent()).some((event) => event.type === 'code_send_refused')).toBe(false);
      expect(logLines.some((line) => line.includes('would have been refused (FRAUD_GUARD=record)'))).toBe(
        true,
      );
      const summary = await guard.stats.summary();
      expect(summary.mode).toBe('record');
      expect(summary.refusals).toEqual(
        expect.arrayContaining([{ rule: 'number_10min', label: 'codes per number in 10 minutes', count: 1 }]),
      );
    });
  });

  it('in record mode, sends every code to a country beyond the limit and flags each, as enforcing would refuse each', async () => {
    build({ ...WITHOUT_BREAKER, FRAUD_GUARD: 'record' });
    const from = (to: string) => send({ to, clientKey: '203.0.113.9' });
    const decisions = [
      await from(US),
      await from(CANADA),
      await from(UK),
      await from(australianNumber(1)),
      await from(australianNumber(2)),
      await from(usNumber(7)),
    ];

    expect(decisions.every((decision) => decision.allowed)).toBe(true);
    const flagged = (await audit.recent()).filter((event) => event.type === 'code_send_flagged');
    expect(flagged.map((event) => event.detail!.split('; ')[0])).toEqual([
      'countries per address in a day (4 of 3)',
      'countries per address in a day (4 of 3)',
    ]);
  });

  it('never names the number in full in the audit log', async () => {
    await sendTimes(4, () => ({}));
    const refused = (await audit.recent()).find((event) => event.type === 'code_send_refused')!;
    expect(refused.detail).toContain('•••• 0142');
    expect(refused.detail).not.toContain('2025550142');
  });
});
