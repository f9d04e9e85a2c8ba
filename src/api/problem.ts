import type { Response } from 'express';

/**
 * The API's errors as problem documents (RFC 9457, `application/problem+json`). Each kind has a
 * stable `type` URN that callers may compare, and `/api/docs` lists under an anchor of the same
 * slug; `title` is fixed per kind, `detail` says what happened this time. Never a stack trace,
 * never a code.
 */

export const PROBLEMS = {
  'malformed-body': { status: 400, title: 'Malformed request body' },
  unauthorized: { status: 401, title: 'Missing or unknown API key' },
  'key-revoked': { status: 403, title: 'API key revoked' },
  'channel-not-allowed': { status: 403, title: 'Channel not allowed for this key' },
  'code-rejected': { status: 403, title: 'Code not accepted' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'verification-closed': { status: 409, title: 'Verification no longer pending' },
  'idempotency-in-progress': { status: 409, title: 'Request still in progress' },
  'check-in-progress': { status: 409, title: 'Another check is in progress' },
  'invalid-request': { status: 422, title: 'Invalid request' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key reused with another body' },
  'destination-refused': { status: 422, title: 'Destination refused' },
  'too-many-requests': { status: 429, title: 'Too many requests' },
  unavailable: { status: 503, title: 'Service unavailable' },
  internal: { status: 500, title: 'Internal error' },
} as const;

export type ProblemSlug = keyof typeof PROBLEMS;

export const problemType = (slug: ProblemSlug) => `urn:keyhole:problem:${slug}`;

export interface FieldError {
  field: string;
  message: string;
}

export interface ProblemDetails {
  detail: string;
  /** 422: which fields are wrong and why. */
  errors?: FieldError[];
  /** 429 (and 409 check-in-progress): also sent as the `Retry-After` header. */
  retryAfterSeconds?: number;
  /** 409: the verification's status now. */
  verificationStatus?: string;
}

export interface ProblemDocument extends ProblemDetails {
  type: string;
  title: string;
  status: number;
}

export function problemDocument(slug: ProblemSlug, details: ProblemDetails): ProblemDocument {
  const { status, title } = PROBLEMS[slug];
  return { type: problemType(slug), title, status, ...details };
}

/**
 * An answer of the API as a value: what an Idempotency-Key keeps and replays, and what the routes
 * send. Its headers follow from its status and body (see sendAnswer), so the status and the body are
 * all there is to keep.
 */
export interface ApiAnswer {
  status: number;
  body: object;
}

export const problemAnswer = (slug: ProblemSlug, details: ProblemDetails): ApiAnswer => {
  const body = problemDocument(slug, details);
  return { status: body.status, body };
};

const isProblemDocument = (body: object): body is ProblemDocument =>
  typeof (body as { type?: unknown }).type === 'string' &&
  (body as { type: string }).type.startsWith('urn:keyhole:problem:');

/** Sends an answer with the headers its status and body call for. */
export function sendAnswer(res: Response, answer: ApiAnswer): void {
  const { status, body } = answer;
  if (isProblemDocument(body)) {
    if (body.retryAfterSeconds !== undefined) res.set('Retry-After', String(body.retryAfterSeconds));
    if (body.type === problemType('unauthorized')) res.set('WWW-Authenticate', 'Bearer realm="keyhole"');
    res.type('application/problem+json');
  } else {
    res.type('application/json');
  }
  res.status(status).send(JSON.stringify(body));
}

export function sendProblem(res: Response, slug: ProblemSlug, details: ProblemDetails): void {
  sendAnswer(res, problemAnswer(slug, details));
}
