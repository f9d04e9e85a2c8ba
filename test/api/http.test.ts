import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type MfaProvider } from '../../src/mfa/provider.js';
import { createProviderPool } from '../../src/mfa/providers/pool.js';
import {
  createApiClient,
  createTestApiKey,
  expectApiHeaders,
  expectApiProblem,
  type ApiClient,
} from '../helpers/api.js';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/create-test-app.js';

const ALICE = '+12025550100';
const JSON_TYPE = { 'Content-Type': 'application/json' };

describe('the verification API over HTTP', () => {
  let site: TestApp;
  let api: ApiClient;
  let key: string;
  let logLines: string[];

  async function start(options: TestAppOptions = {}) {
    logLines = [];
    site = await createTestApp({ logLines, ...options });
    ({ key } = await createTestApiKey(site));
    api = createApiClient(site.app, key);
  }
  beforeEach(() => start());
  afterEach(() => site.close());

  describe('the bearer key', () => {
    it('answers 401 with WWW-Authenticate to no key, a malformed key and an unknown key', async () => {
      const unknown = `kh_test_${'A'.repeat(43)}`;
      for (const client of [
        createApiClient(site.app),
        createApiClient(site.app, 'not-a-key'),
        createApiClient(site.app, unknown),
      ]) {
        const res = await client.send({ to: ALICE });
        expectApiProblem(res, 401, 'unauthorized');
        expect(res.headers['www-authenticate']).toBe('Bearer realm="keyhole"');
      }
      expect(site.outbox.list()).toEqual([]);
    });

    it('takes no key from a cookie or the query string', async () => {
      const res = await request(site.app)
        .post(`/api/v1/verifications?key=${key}`)
        .set('Cookie', `key=${key}`)
        .send({ to: ALICE });
      expectApiProblem(res, 401, 'unauthorized');
    });
  });

  describe('bodies', () => {
    it('answers 400 malformed-body to JSON it cannot read, without echoing it', async () => {
      const res = await api.post('/api/v1/verifications', '{"to": "+12025550100",', JSON_TYPE);
      const problem = expectApiProblem(res, 400, 'malformed-body');
      expect(problem.detail).toBe('The body is not valid JSON.');
      expect(res.text).not.toContain('12025550100');
    });

    it('answers 400 malformed-body to a body that is not a JSON object', async () => {
      for (const body of ['[{"to": "+12025550100"}]', '"+12025550100"', 'null', '42']) {
        expectApiProblem(await api.post('/api/v1/verifications', body, JSON_TYPE), 400, 'malformed-body');
      }
    });

    it('answers 400 malformed-body to another content type, a form included', async () => {
      const form = await api.post('/api/v1/verifications', 'to=%2B12025550100', {
        'Content-Type': 'application/x-www-form-urlencoded',
      });
      expect(expectApiProblem(form, 400, 'malformed-body').detail).toMatch(/application\/json/);
      const text = await api.post('/api/v1/verifications', '+12025550100', { 'Content-Type': 'text/plain' });
      expectApiProblem(text, 400, 'malformed-body');
      expect(site.outbox.list()).toEqual([]);
    });

    it('answers 400 malformed-body to a body over 8 kB', async () => {
      const res = await api.post(
        '/api/v1/verifications',
        JSON.stringify({ to: ALICE, label: 'x'.repeat(9000) }),
        JSON_TYPE,
      );
      expect(expectApiProblem(res, 400, 'malformed-body').detail).toBe('The body is larger than 8 kB.');
    });

    it('answers 400 malformed-body to a body it cannot decode, never 500', async () => {
      const badGzip = await api.post('/api/v1/verifications', 'not gzip at all', {
        ...JSON_TYPE,
        'Content-Encoding': 'gzip',
      });
      expect(expectApiProblem(badGzip, 400, 'malformed-body').detail).toBe('The body could not be read.');
      const unknownEncoding = await api.post('/api/v1/verifications', JSON.stringify({ to: ALICE }), {
        ...JSON_TYPE,
        'Content-Encoding': 'x-keyhole',
      });
      expectApiProblem(unknownEncoding, 400, 'malformed-body');
      const unknownCharset = await api.post('/api/v1/verifications', JSON.stringify({ to: ALICE }), {
        'Content-Type': 'application/json; charset=x-keyhole',
      });
      expectApiProblem(unknownCharset, 400, 'malformed-body');
      expect(logLines.filter((line) => line.includes('"level":50'))).toEqual([]);
      expect(site.outbox.list()).toEqual([]);
    });

    it('accepts application/json with a charset, and a vendor +json type', async () => {
      const res = await api.post('/api/v1/verifications', JSON.stringify({ to: ALICE }), {
        'Content-Type': 'application/json; charset=utf-8',
      });
      expect(res.status).toBe(201);
      const vendor = await api.post('/api/v1/verifications', JSON.stringify({ to: '+12025550101' }), {
        'Content-Type': 'application/vnd.keyhole+json',
      });
      expect(vendor.status).toBe(201);
    });
  });

  describe('fields (422 invalid-request, with errors)', () => {
    const errorsOf = async (body: unknown) =>
      expectApiProblem(await api.send(body as Record<string, unknown>), 422, 'invalid-request').errors;

    it('names a missing number, and sends nothing', async () => {
      expect(await errorsOf({})).toEqual([{ field: 'to', message: 'to is required.' }]);
      const noBody = await api.post('/api/v1/verifications');
      expect(expectApiProblem(noBody, 422, 'invalid-request').errors).toEqual([
        { field: 'to', message: 'to is required.' },
      ]);
      expect(site.outbox.list()).toEqual([]);
    });

    it('takes only E.164 numbers the site itself would take', async () => {
      for (const to of ['12025550100', '+1 202 555 0100', '+1202555010', 12025550100, '+999123456789']) {
        const errors = (await errorsOf({ to })) as { field: string }[];
        expect(errors.map((error) => error.field)).toEqual(['to']);
      }
    });

    it('refuses unknown fields, a channel it does not know and a label out of shape', async () => {
      expect(await errorsOf({ to: ALICE, chanel: 'voice', extra: 1 })).toEqual([
        { field: 'chanel', message: 'This field is not known here.' },
        { field: 'extra', message: 'This field is not known here.' },
      ]);
      expect(await errorsOf({ to: ALICE, channel: 'email' })).toEqual([
        { field: 'channel', message: 'Give channel as "sms" or "voice".' },
      ]);
      for (const label of ['', '-checkout', 'check out', 'x'.repeat(41), 'café', 7]) {
        const errors = (await errorsOf({ to: ALICE, label })) as { field: string }[];
        expect(errors.map((error) => error.field)).toEqual(['label']);
      }
      expect(site.outbox.list()).toEqual([]);
    });

    it('refuses an Idempotency-Key out of shape', async () => {
      for (const value of ['', 'x'.repeat(256), 'clé']) {
        const res = await request(site.app)
          .post('/api/v1/verifications')
          .set('Authorization', `Bearer ${key}`)
          .set('Idempotency-Key', Buffer.from(value, 'utf8').toString('latin1'))
          .send({ to: ALICE });
        expect(expectApiProblem(res, 422, 'invalid-request').errors).toEqual([
          { field: 'Idempotency-Key', message: 'An Idempotency-Key is 1 to 255 printable ASCII characters.' },
        ]);
      }
      expect(site.outbox.list()).toEqual([]);
    });
  });

  describe('paths and methods', () => {
    it('answers 405 with Allow to a method a path does not take', async () => {
      const cases: Array<[string, string, string]> = [
        ['get', '/api/v1/verifications', 'POST'],
        ['put', '/api/v1/verifications/ver_x', 'GET, HEAD, DELETE'],
        ['post', '/api/v1/verifications/ver_x', 'GET, HEAD, DELETE'],
        ['get', '/api/v1/verifications/ver_x/check', 'POST'],
        ['delete', '/api/v1/verifications/ver_x/check', 'POST'],
      ];
      for (const [method, path, allow] of cases) {
        const res = await (request(site.app) as unknown as Record<string, (path: string) => request.Test>)[
          method
        ]!(path).set('Authorization', `Bearer ${key}`);
        expectApiProblem(res, 405, 'method-not-allowed');
        expect(res.headers.allow).toBe(allow);
      }
    });

    it('answers 404 problem documents under /api/, with a key or without', async () => {
      for (const path of [
        '/api',
        '/api/v2/verifications',
        '/api/v1/verifications/ver_x/check/again',
        '/api/login',
      ]) {
        expectApiProblem(await request(site.app).get(path), 404, 'not-found');
        expectApiProblem(await api.get(path), 404, 'not-found');
      }
    });

    it('sets no cookie, even for a caller that sends the site’s own cookies', async () => {
      // The site's session and CSRF cookies are never read or written under /api/.
      const page = await request(site.app).get('/login');
      const cookies = (page.headers['set-cookie'] as unknown as string[]).map(
        (cookie) => cookie.split(';')[0],
      );
      expect(cookies.length).toBeGreaterThan(0);
      const res = await request(site.app)
        .post('/api/v1/verifications')
        .set('Authorization', `Bearer ${key}`)
        .set('Cookie', cookies.join('; '))
        .send({ to: ALICE });
      expect(res.status).toBe(201);
      expectApiHeaders(res);
    });

    it('answers the flood guard’s 429 as a problem document at any case of an API path', async () => {
      await site.close();
      await start({ requestsPerMinute: 1 });
      await api.postForm('/request-auth', { to: ALICE });
      for (const path of ['/REQUEST-AUTH', '/Validate-Auth', '/API/v1/verifications/ver_x']) {
        const res = await request(site.app).post(path).set('Authorization', `Bearer ${key}`).send({});
        expect(expectApiProblem(res, 429, 'too-many-requests').retryAfterSeconds).toBe(60);
      }
    });

    it('answers the flood guard’s 429 as a problem document', async () => {
      await site.close();
      await start({ requestsPerMinute: 2 });
      await api.get('/api/v1/verifications/ver_x');
      await api.get('/api/v1/verifications/ver_x');
      const res = await api.get('/api/v1/verifications/ver_x');
      expect(expectApiProblem(res, 429, 'too-many-requests').retryAfterSeconds).toBe(60);
    });
  });

  describe('failures', () => {
    it('answers 503 unavailable when no provider can send, and the code counts against nothing', async () => {
      const failing: MfaProvider = {
        name: 'failing',
        channels: ['sms'],
        send: async () => {
          throw new ProviderError('unavailable', 'failing', 'send sms code: HTTP 500');
        },
        verify: async () => 'invalid',
      };
      await site.close();
      await start({ providers: createProviderPool([failing]), env: { API_KEY_SENDS_PER_HOUR: '1' } });
      const res = await api.send({ to: ALICE });
      expect(expectApiProblem(res, 503, 'unavailable').detail).toMatch(/Nothing was sent/);
      // Nothing went out: the key's hourly code and the number's cooldown were handed back.
      expectApiProblem(await api.send({ to: ALICE }), 503, 'unavailable');
      // No provider delivers by voice at all.
      expectApiProblem(await api.send({ to: ALICE, channel: 'voice' }), 503, 'unavailable');
      expect(logLines.some((line) => line.includes('code provider failed'))).toBe(true);
    });

    it('answers 500 internal to anything unexpected, logged, with nothing of the error in the answer', async () => {
      const broken: MfaProvider = {
        name: 'broken',
        channels: ['sms'],
        send: async () => {
          throw new TypeError('secret internals: cannot read properties of undefined');
        },
        verify: async () => 'invalid',
      };
      await site.close();
      await start({ providers: createProviderPool([broken]) });
      const res = await api.send({ to: ALICE });
      expectApiProblem(res, 500, 'internal');
      expect(res.text).not.toMatch(/secret internals|TypeError/);
      expect(logLines.some((line) => line.includes('secret internals'))).toBe(true);
    });

    it('answers 503 unavailable while the database cannot be written', async () => {
      const lockHolder = new Database(site.databasePath);
      lockHolder.exec('BEGIN IMMEDIATE');
      try {
        const res = await api.send({ to: ALICE });
        expect(expectApiProblem(res, 503, 'unavailable').retryAfterSeconds).toBe(5);
      } finally {
        lockHolder.exec('ROLLBACK');
        lockHolder.close();
      }
      expect((await api.send({ to: ALICE })).status).toBe(201);
    });
  });
});
