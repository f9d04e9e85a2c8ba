import { describe, expect, it } from 'vitest';
import {
  expectMatchesContract,
  expectNoCookie,
  expectProblem,
  type ContractResponse,
} from '../helpers/api-contract.js';

/**
 * The contract helper is what the API's route tests lean on, so it must itself fail when an answer
 * strays from openapi.yaml. These hand-made answers stray in one way each.
 */

const CREATE = { method: 'POST', path: '/api/v1/verifications' };
const CHECK = { method: 'POST', path: '/api/v1/verifications/{id}/check' };

const CREATED = {
  id: 'ver_3kTq9wZbR2mXhYp7LcNd0A',
  to: '•••• 0123',
  channel: 'sms',
  label: 'checkout',
  status: 'pending',
  expiresAt: '2026-12-02T05:00:00.000Z',
  attemptsLeft: 5,
};

function answer(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = 'application/json; charset=utf-8',
): ContractResponse {
  return {
    status,
    headers: { 'content-type': contentType, 'cache-control': 'no-store', ...headers },
    text: JSON.stringify(body),
  };
}

const created = (body: unknown = CREATED, headers: Record<string, string> = {}) =>
  answer(201, body, { location: '/api/v1/verifications/ver_3kTq9wZbR2mXhYp7LcNd0A', ...headers });

const problem = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  answer(status, body, headers, 'application/problem+json; charset=utf-8');

const CLOSED = {
  type: 'urn:keyhole:problem:verification-closed',
  title: 'Verification no longer pending',
  status: 409,
  detail: 'This verification was already approved.',
  verificationStatus: 'approved',
};

describe('expectMatchesContract', () => {
  it('passes a 201 with the documented body, Location and Cache-Control', () => {
    expectMatchesContract(created(), CREATE);
    expectMatchesContract(created(CREATED, { 'idempotent-replayed': 'true' }), CREATE);
  });

  it('passes a documented problem: a 409 on a check with the verification status in verificationStatus', () => {
    expectMatchesContract(problem(409, CLOSED), CHECK);
  });

  it('fails a status the operation does not document', () => {
    expect(() => expectMatchesContract(problem(404, { ...CLOSED, status: 404 }), CREATE)).toThrow(
      /status 404 is undocumented/,
    );
    expect(() => expectMatchesContract(answer(200, CREATED), CREATE)).toThrow(/status 200 is undocumented/);
  });

  it('fails a body without a required field', () => {
    const { attemptsLeft: _left, ...withoutAttempts } = CREATED;
    expect(() => expectMatchesContract(created(withoutAttempts), CREATE)).toThrow(
      /must have required property 'attemptsLeft'/,
    );
  });

  it('fails a body with a field the document does not name (a code, say)', () => {
    expect(() => expectMatchesContract(created({ ...CREATED, code: '123456' }), CREATE)).toThrow(
      /must NOT have additional properties.*"additionalProperty":"code"/,
    );
  });

  it('fails a value outside its enum or pattern', () => {
    expect(() => expectMatchesContract(created({ ...CREATED, status: 'sent' }), CREATE)).toThrow(/status/);
    // The number in full would be a leak: only the masked form is documented.
    expect(() => expectMatchesContract(created({ ...CREATED, to: '+12025550123' }), CREATE)).toThrow(/\/to/);
    expect(() => expectMatchesContract(created({ ...CREATED, expiresAt: 'tomorrow' }), CREATE)).toThrow(
      /date-time/,
    );
  });

  it('fails the wrong content type: JSON where a problem is documented, HTML where JSON is', () => {
    expect(() => expectMatchesContract(answer(409, CLOSED), CHECK)).toThrow(
      /content type application\/json is not the documented application\/problem\+json/,
    );
    expect(() =>
      expectMatchesContract(
        { ...created(), headers: { ...created().headers, 'content-type': 'text/html' } },
        CREATE,
      ),
    ).toThrow(/content type text\/html/);
  });

  it('fails a missing required header, or one with the wrong value', () => {
    expect(() => expectMatchesContract(answer(201, CREATED), CREATE)).toThrow(/required header Location/);
    const cached = created();
    cached.headers['cache-control'] = 'max-age=60';
    expect(() => expectMatchesContract(cached, CREATE)).toThrow(/header Cache-Control/);
    const unauthorized = {
      type: 'urn:keyhole:problem:unauthorized',
      title: 'Missing or unknown API key',
      status: 401,
      detail: 'Send your API key.',
    };
    expect(() => expectMatchesContract(problem(401, unauthorized), CREATE)).toThrow(/WWW-Authenticate/);
    expectMatchesContract(
      problem(401, unauthorized, { 'www-authenticate': 'Bearer realm="keyhole"' }),
      CREATE,
    );
  });

  it('fails a problem without what its type requires, or with a type another status owns', () => {
    // RFC 9457's status is the HTTP status: the verification's own goes in verificationStatus.
    const { verificationStatus: _status, ...withoutStatus } = CLOSED;
    expect(() => expectMatchesContract(problem(409, withoutStatus), CHECK)).toThrow(/verificationStatus/);
    expect(() =>
      expectMatchesContract(problem(409, { ...withoutStatus, status: 'approved' }), CHECK),
    ).toThrow(/\/status must be integer/);
    const tooMany = {
      type: 'urn:keyhole:problem:too-many-requests',
      title: 'Too many requests',
      status: 429,
      detail: 'Wait.',
    };
    expect(() => expectMatchesContract(problem(429, tooMany, { 'retry-after': '30' }), CREATE)).toThrow(
      /retryAfterSeconds/,
    );
    const rejected = {
      type: 'urn:keyhole:problem:code-rejected',
      title: 'Code not accepted',
      status: 403,
      detail: 'No.',
    };
    expect(() => expectMatchesContract(problem(403, rejected), CREATE)).toThrow(
      /\/type must be equal to one of/,
    );
  });

  it('fails a body that is not JSON', () => {
    expect(() => expectMatchesContract({ ...created(), text: 'not json' }, CREATE)).toThrow(/not JSON/);
  });

  it('names the operations it knows when asked about one it does not', () => {
    expect(() => expectMatchesContract(created(), { method: 'PUT', path: '/api/v1/verifications' })).toThrow(
      /no operation PUT \/api\/v1\/verifications[\s\S]*POST \/api\/v1\/verifications/,
    );
  });
});

describe('expectProblem', () => {
  it('passes the problem document of the slug, with its documented status and title', () => {
    expectProblem(problem(409, CLOSED), 'verification-closed');
  });

  it('fails another title, another status, or another slug than asked', () => {
    expect(() =>
      expectProblem(problem(409, { ...CLOSED, title: 'Conflict' }), 'verification-closed'),
    ).toThrow();
    expect(() => expectProblem(problem(400, { ...CLOSED, status: 400 }), 'verification-closed')).toThrow();
    expect(() => expectProblem(problem(409, CLOSED), 'idempotency-in-progress')).toThrow();
    expect(() => expectProblem(answer(409, CLOSED), 'verification-closed')).toThrow();
  });
});

describe('expectNoCookie', () => {
  it('passes an answer without Set-Cookie and fails one with it', () => {
    expectNoCookie(created());
    expect(() => expectNoCookie(created(CREATED, { 'set-cookie': 'mfa.sid=s%3Aabc; Path=/' }))).toThrow(
      /a cookie was set/,
    );
  });
});
