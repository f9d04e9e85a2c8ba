import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type MfaProvider } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import {
  consoleMessagesTo,
  createApiClient,
  createGatedConsole,
  createTestApiKey,
  expectApiProblem,
  type ApiClient,
} from '../helpers/api.js';
import { REFUSALS_KEPT_PER_KEY_PER_DAY, refusalsKeptKey } from '../../src/api/idempotency.js';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/create-test-app.js';
import { eventually } from '../helpers/eventually.js';

const ALICE = '+12025550100';
const BOB = '+12025550101';

/**
 * Idempotency-Key on POST /api/v1/verifications. Threat: a caller whose request timed out on the
 * way back retries it, and the person gets two codes (and the site pays twice).
 */
describe('Idempotency-Key', () => {
  let site: TestApp;
  let api: ApiClient;

  async function start(options: TestAppOptions = {}) {
    site = await createTestApp(options);
    api = createApiClient(site.app, (await createTestApiKey(site)).key);
  }
  beforeEach(() => start());
  afterEach(() => site.close());

  const sendWith = (idempotencyKey: string, body: Record<string, unknown>, client = api) =>
    client.send(body, { 'Idempotency-Key': idempotencyKey });

  it('answers the same key and body again with the first answer, and sends one code', async () => {
    const first = await sendWith('order-1041', { to: ALICE, label: 'checkout' });
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    site.clock.advance(60_000);
    // The same body, its fields in another order: the same request.
    const replay = await sendWith('order-1041', { label: 'checkout', to: ALICE });
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers.location).toBe(first.headers.location);
    expect(replay.text).toBe(first.text);
    expect(consoleMessagesTo(site, ALICE)).toBe(1);
  });

  it('refuses the same key with another body (422), and sends nothing for it', async () => {
    await sendWith('order-1041', { to: ALICE });
    const other = await sendWith('order-1041', { to: BOB });
    expectApiProblem(other, 422, 'idempotency-key-reused');
    expect(consoleMessagesTo(site, BOB)).toBe(0);
  });

  it('keeps each API key’s Idempotency-Keys apart', async () => {
    await sendWith('order-1041', { to: ALICE });
    const other = createApiClient(site.app, (await createTestApiKey(site, { name: 'other app' })).key);
    const theirs = await sendWith('order-1041', { to: BOB }, other);
    expect(theirs.status).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
  });

  it('tells a request whose twin is still being answered to wait (409), and sends once', async () => {
    await site.close();
    const gated = createGatedConsole();
    await start({ providers: gated.pool });
    gated.bind(site);
    const release = gated.holdSends();

    const first = sendWith('order-1041', { to: ALICE });
    // The first has claimed the key and waits for the provider.
    await eventually(async () => {
      const row = await site.database.db.selectFrom('api_idempotency').selectAll().executeTakeFirst();
      expect(row).toBeDefined();
    });
    const twin = await sendWith('order-1041', { to: ALICE });
    expectApiProblem(twin, 409, 'idempotency-in-progress');
    release();
    expect((await first).status).toBe(201);
    expect((await sendWith('order-1041', { to: ALICE })).headers['idempotent-replayed']).toBe('true');
    expect(consoleMessagesTo(site, ALICE)).toBe(1);
  });

  it('keeps a refusal and replays it (422 destination-refused)', async () => {
    await site.close();
    await start({ env: { SMS_COUNTRIES: 'US' } });
    const refused = await sendWith('order-1041', { to: '+442079460000' });
    expectApiProblem(refused, 422, 'destination-refused');
    const replay = await sendWith('order-1041', { to: '+442079460000' });
    expectApiProblem(replay, 422, 'destination-refused');
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });

  it('keeps at most 1000 refusals a key a day; past that a refusal is answered, not kept', async () => {
    // Threat: a key keeping a row a day per fresh Idempotency-Key with requests that send nothing.
    await site.close();
    await start({ env: { SMS_COUNTRIES: 'US' } });
    const { key, apiKey } = await createTestApiKey(site, { name: 'busy app' });
    const busy = createApiClient(site.app, key);
    const counter = refusalsKeptKey(apiKey.id, site.clock.now());
    for (let i = 0; i < REFUSALS_KEPT_PER_KEY_PER_DAY; i += 1) {
      await site.stores.limits.increment(counter, 24 * 60 * 60_000);
    }
    const refused = await sendWith('order-1041', { to: '+442079460000' }, busy);
    expectApiProblem(refused, 422, 'destination-refused');
    const retry = await sendWith('order-1041', { to: '+442079460000' }, busy);
    expectApiProblem(retry, 422, 'destination-refused');
    expect(retry.headers['idempotent-replayed']).toBeUndefined();

    // A code that went out is still kept: its retry sends no second one.
    const sent = await sendWith('order-1042', { to: ALICE }, busy);
    expect(sent.status).toBe(201);
    const replay = await sendWith('order-1042', { to: ALICE }, busy);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(consoleMessagesTo(site, ALICE)).toBe(1);
  });

  it('drops the claim when nothing went out (503), so a retry with the same key sends', async () => {
    let down = true;
    await site.close();
    const flaky = createGatedConsole();
    const provider: MfaProvider = {
      name: 'flaky',
      channels: ['sms'],
      async send(request) {
        if (down) throw new ProviderError('unavailable', 'flaky', 'send sms code: ECONNREFUSED');
        return flaky.pool.send(request);
      },
      verify: (request) => flaky.pool.verify('console', request),
    };
    await start({ providers: createProviderPool([provider]) });
    flaky.bind(site);

    expectApiProblem(await sendWith('order-1041', { to: ALICE }), 503, 'unavailable');
    down = false;
    const retry = await sendWith('order-1041', { to: ALICE });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(consoleMessagesTo(site, ALICE)).toBe(1);
  });

  it('keeps a 503 after which a code may have gone out: the retry does not send another', async () => {
    await site.close();
    const timingOut: MfaProvider = {
      name: 'timing-out',
      channels: ['sms'],
      send: async () => {
        throw new ProviderError('unavailable', 'timing-out', 'send sms code: timeout', {
          delivered: 'maybe',
        });
      },
      verify: async () => 'invalid',
    };
    await start({ providers: createProviderPool([timingOut]) });
    const first = await sendWith('order-1041', { to: ALICE });
    expect(expectApiProblem(first, 503, 'unavailable').detail).toMatch(/may have been sent/);
    const replay = await sendWith('order-1041', { to: ALICE });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
  });

  it('keeps the answer when the request fails after its code went out: the retry sends no second code', async () => {
    const logLines: string[] = [];
    await site.close();
    await start({ logLines });
    const store = site.stores.apiVerifications;
    const create = store.create.bind(store);
    store.create = async () => {
      throw new TypeError('a bug after the send');
    };
    let first;
    try {
      first = await sendWith('order-1041', { to: ALICE });
    } finally {
      store.create = create;
    }
    const problem = expectApiProblem(first, 503, 'unavailable');
    expect(problem.detail).toMatch(/may have been sent.*do not ask for another before 30 seconds/);
    expect(first.headers['retry-after']).toBe('30');
    expect(first.text).not.toMatch(/a bug after the send/);
    expect(logLines.some((line) => line.includes('a bug after the send'))).toBe(true);
    expect(consoleMessagesTo(site, ALICE)).toBe(1);

    const replay = await sendWith('order-1041', { to: ALICE });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
    expect(consoleMessagesTo(site, ALICE)).toBe(1);
  });

  it('does not keep a limit’s 429: once the wait is over, the same key sends', async () => {
    await sendWith('order-1040', { to: ALICE });
    const refused = await sendWith('order-1041', { to: ALICE });
    expectApiProblem(refused, 429, 'too-many-requests');
    site.clock.advance(30_000);
    const retry = await sendWith('order-1041', { to: ALICE });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
  });

  it('forgets a key after a day', async () => {
    const first = await sendWith('order-1041', { to: ALICE });
    site.clock.advance(24 * 60 * 60_000 + 1);
    const later = await sendWith('order-1041', { to: ALICE });
    expect(later.status).toBe(201);
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(later.body.id).not.toBe(first.body.id);

    // Housekeeping deletes the answers a day on, the verifications a day after they expired.
    site.clock.advance(25 * 60 * 60_000);
    for (const task of site.stores.housekeeping) await task.runBatch();
    expect(await site.database.db.selectFrom('api_idempotency').selectAll().execute()).toEqual([]);
    expect(await site.database.db.selectFrom('api_verifications').selectAll().execute()).toEqual([]);
  });
});
