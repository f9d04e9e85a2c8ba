import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKeyAuthentication } from '../../src/api/authenticate.js';
import { generateApiKey, type ApiKeyStore } from '../../src/api/keys.js';
import { createSqlApiKeyStore } from '../../src/stores/sql/api-key-store.js';
import { createTestClock, type TestClock } from '../helpers/clock.js';
import { openTestSqliteDatabase, type TestSqlDatabase } from '../helpers/sql.js';

/**
 * The API's bearer keys (src/api/authenticate.ts). Threats: a caller without a key, with a guessed
 * or half-right one, or with one an admin revoked, reaching the API; a busy key writing a row on
 * every request.
 */
describe('API key authentication', () => {
  let sql: TestSqlDatabase;
  let apiKeys: ApiKeyStore;
  let clock: TestClock;
  let app: Express;

  /** A key in the store, as an admin's creation leaves it. */
  async function storedKey(channels: Array<'sms' | 'voice'> = ['sms']) {
    const { key, keyHash, hint } = generateApiKey(false);
    const apiKey = await apiKeys.create({ name: 'Shop checkout', keyHash, hint, channels, createdBy: null });
    return { key, apiKey };
  }

  const call = (authorization?: string) => {
    const pending = request(app).post('/api/v1/ping');
    return authorization === undefined ? pending : pending.set('Authorization', authorization);
  };

  function expectUnauthorized(res: request.Response) {
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="keyhole"');
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = JSON.parse(res.text) as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'urn:keyhole:problem:unauthorized', status: 401 });
    expect(body.title).toEqual(expect.any(String));
    expect(body.detail).toEqual(expect.any(String));
  }

  beforeEach(async () => {
    sql = await openTestSqliteDatabase();
    clock = createTestClock();
    apiKeys = createSqlApiKeyStore(sql.database, clock);
    app = express();
    app.use('/api', createApiKeyAuthentication({ apiKeys, clock }));
    app.post('/api/v1/ping', (req, res) => {
      res.json({ keyId: req.apiKey?.id, name: req.apiKey?.name, channels: req.apiKey?.channels });
    });
  });
  afterEach(() => sql.close());

  it('refuses a request without an Authorization header: 401, a Bearer challenge and a problem document', async () => {
    const res = await call();
    expectUnauthorized(res);
    expect(JSON.parse(res.text).detail).toContain('Authorization: Bearer');
  });

  it('refuses malformed headers alike', async () => {
    const { key } = await storedKey();
    for (const header of [
      '',
      'Bearer',
      'Bearer ',
      `Basic ${key}`,
      `Token ${key}`,
      `Bearer ${key} extra`,
      key,
    ]) {
      expectUnauthorized(await call(header));
    }
  });

  it('takes a key only from the header, never from the address', async () => {
    const { key } = await storedKey();
    expectUnauthorized(await request(app).post(`/api/v1/ping?access_token=${key}`));
    expectUnauthorized(await request(app).post(`/api/v1/ping?api_key=${key}`));
  });

  it('refuses a key with another prefix, even with the right random part', async () => {
    const { key } = await storedKey();
    const random = key.slice('kh_test_'.length);
    for (const prefix of ['kh_prod_', 'sk_test_', 'KH_TEST_', 'kh_test'])
      expectUnauthorized(await call(`Bearer ${prefix}${random}`));
  });

  it('refuses a key of the right shape that is not known, or a stored key with one character changed', async () => {
    const { key } = await storedKey();
    expectUnauthorized(await call(`Bearer ${generateApiKey(false).key}`));
    const last = key.at(-1) === 'A' ? 'B' : 'A';
    expectUnauthorized(await call(`Bearer ${key.slice(0, -1)}${last}`));
    expectUnauthorized(await call(`Bearer ${key}A`));
  });

  it('tells the holder of a revoked key so: 403 key-revoked, and records no use', async () => {
    const { key, apiKey } = await storedKey();
    expect(await apiKeys.revoke(apiKey.id)).toBe(true);
    const res = await call(`Bearer ${key}`);
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text)).toMatchObject({ type: 'urn:keyhole:problem:key-revoked', status: 403 });
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect((await apiKeys.findById(apiKey.id))!.lastUsedAt).toBeNull();
  });

  it('lets a good key through with the key on the request, whatever the case of "Bearer"', async () => {
    const { key, apiKey } = await storedKey(['sms', 'voice']);
    const res = await call(`Bearer ${key}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ keyId: apiKey.id, name: 'Shop checkout', channels: ['sms', 'voice'] });
    expect((await call(`bearer ${key}`)).status).toBe(200);
  });

  it('writes a key’s last use once a minute at most, not once a request', async () => {
    const { key, apiKey } = await storedKey();
    const lastUsed = async () => (await apiKeys.findById(apiKey.id))!.lastUsedAt;
    const first = clock.now();
    expect((await call(`Bearer ${key}`)).status).toBe(200);
    expect(await lastUsed()).toEqual(first);

    clock.advance(30_000);
    expect((await call(`Bearer ${key}`)).status).toBe(200);
    clock.advance(29_000);
    expect((await call(`Bearer ${key}`)).status).toBe(200);
    expect(await lastUsed()).toEqual(first);

    clock.advance(2_000);
    expect((await call(`Bearer ${key}`)).status).toBe(200);
    expect(await lastUsed()).toEqual(clock.now());
  });

  it('sees a revocation at once: the request after it is refused', async () => {
    const { key, apiKey } = await storedKey();
    expect((await call(`Bearer ${key}`)).status).toBe(200);
    await apiKeys.revoke(apiKey.id);
    expect((await call(`Bearer ${key}`)).status).toBe(403);
  });
});
