import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  consoleCodeTo,
  consoleMessagesTo,
  createApiClient,
  createTestApiKey,
  expectApiHeaders,
  expectApiProblem,
  type ApiClient,
} from '../helpers/api.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { wrongFor } from '../helpers/flows.js';

const ALICE = '+12025550100';
const POST_ONLY = 'Send the number and code in a POST body: a code in a URL ends up in logs.';

describe('the voice sample’s routes: POST /request-auth and /validate-auth', () => {
  let site: TestApp;
  let api: ApiClient;
  let key: string;
  beforeEach(async () => {
    site = await createTestApp();
    ({ key } = await createTestApiKey(site));
    api = createApiClient(site.app, key);
  });
  afterEach(() => site.close());

  it('calls the number with a code (a form body), and approves it (a form body)', async () => {
    const sent = await api.postForm('/request-auth', { number: ALICE });
    expect(sent.status).toBe(200);
    expect(sent.body).toEqual({
      status: 'sent',
      to: '•••• 0100',
      channel: 'voice',
      expiresAt: new Date(site.clock.now().getTime() + 5 * 60_000).toISOString(),
    });
    expect(site.outbox.list()[0]).toMatchObject({ channel: 'voice', to: ALICE });

    const approved = await api.postForm('/validate-auth', {
      number: ALICE,
      auth_code: consoleCodeTo(site, ALICE),
    });
    expect(approved.status).toBe(200);
    expect(approved.body).toEqual({ status: 'approved' });
  });

  it('takes JSON bodies, a channel and a label too', async () => {
    const sent = await api.post('/request-auth', { number: ALICE, channel: 'sms', label: 'door' });
    expect(sent.body).toMatchObject({ status: 'sent', channel: 'sms' });
    const code = consoleCodeTo(site, ALICE);
    // Under another label, nothing is pending.
    expectApiProblem(
      await api.post('/validate-auth', { number: ALICE, auth_code: code }),
      403,
      'code-rejected',
    );
    const approved = await api.post('/validate-auth', { number: ALICE, auth_code: code, label: 'door' });
    expect(approved.body).toEqual({ status: 'approved' });
  });

  it('answers 403 code-rejected to a wrong code, a used code, an expired one and none sent', async () => {
    await api.postForm('/request-auth', { number: ALICE });
    const code = consoleCodeTo(site, ALICE);
    const wrong = await api.postForm('/validate-auth', { number: ALICE, auth_code: wrongFor(code) });
    expect(expectApiProblem(wrong, 403, 'code-rejected').detail).toBe('The code is not right.');
    expect((await api.postForm('/validate-auth', { number: ALICE, auth_code: code })).status).toBe(200);
    expectApiProblem(
      await api.postForm('/validate-auth', { number: ALICE, auth_code: code }),
      403,
      'code-rejected',
    );

    site.clock.advance(30_000);
    await api.postForm('/request-auth', { number: ALICE });
    site.clock.advance(5 * 60_000);
    const expired = await api.postForm('/validate-auth', {
      number: ALICE,
      auth_code: consoleCodeTo(site, ALICE),
    });
    expect(expectApiProblem(expired, 403, 'code-rejected').detail).toMatch(/expired/);
    expectApiProblem(
      await api.postForm('/validate-auth', { number: '+12025550101', auth_code: '123456' }),
      403,
      'code-rejected',
    );
  });

  it('checks the newest code sent to the number: an older one is void', async () => {
    await api.postForm('/request-auth', { number: ALICE });
    const older = consoleCodeTo(site, ALICE);
    site.clock.advance(30_000);
    await api.postForm('/request-auth', { number: ALICE });
    const newer = consoleCodeTo(site, ALICE);
    if (older !== newer) {
      expectApiProblem(
        await api.postForm('/validate-auth', { number: ALICE, auth_code: older }),
        403,
        'code-rejected',
      );
    }
    expect((await api.postForm('/validate-auth', { number: ALICE, auth_code: newer })).status).toBe(200);
  });

  it('keeps the API’s rules: the cooldown (429), the key (401), the fields (422)', async () => {
    await api.postForm('/request-auth', { number: ALICE });
    expectApiProblem(await api.postForm('/request-auth', { number: ALICE }), 429, 'too-many-requests');
    expect(consoleMessagesTo(site, ALICE)).toBe(1);
    expectApiProblem(
      await createApiClient(site.app).postForm('/request-auth', { number: ALICE }),
      401,
      'unauthorized',
    );
    const invalid = await api.postForm('/validate-auth', { number: 'not a number', auth_code: '12' });
    expect(
      (expectApiProblem(invalid, 422, 'invalid-request').errors as { field: string }[]).map(
        (error) => error.field,
      ),
    ).toEqual(['number', 'auth_code']);
  });

  it('answers 405 with Allow: POST to GET and every other method, and sends nothing', async () => {
    // Threat: a code (or a number) in a URL ends up in the logs of every proxy on the way.
    for (const path of ['/request-auth', '/validate-auth']) {
      for (const method of ['get', 'put', 'delete'] as const) {
        const res = await request(site.app)
          [method](`${path}?number=%2B12025550100&auth_code=123456`)
          .set('Authorization', `Bearer ${key}`);
        const problem = expectApiProblem(res, 405, 'method-not-allowed');
        expect(res.headers.allow).toBe('POST');
        expect(problem.detail).toBe(POST_ONLY);
      }
    }
    expect(site.outbox.list()).toEqual([]);
  });

  it('sets no cookie and lets nothing keep an answer', async () => {
    const res = await request(site.app)
      .post('/request-auth')
      .set('Authorization', `Bearer ${key}`)
      .type('form')
      .send({ number: ALICE });
    expect(res.status).toBe(200);
    expectApiHeaders(res);
  });
});
