import { ProviderError, type ProviderDelivery } from '../provider.js';

/**
 * The one way the fetch-based providers (Twilio, SignalWire, Kandy) talk HTTP: a hard deadline
 * that covers the body too, no redirects, and failures that never carry a secret, a code or a
 * number. The request itself (URL with ids, headers with credentials, body with the number) is
 * never attached to an error, because loggers print causes.
 */

export interface HttpRequest {
  provider: string;
  /** What the call does, for error messages: "send sms code", "verify code". */
  action: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** A form (URLSearchParams) or a JSON string; the matching Content-Type is set. */
  body?: URLSearchParams | { json: unknown };
  timeoutMs: number;
  /** A deadline shared by several calls (a token fetch and the call it is for); replaces timeoutMs. */
  deadline?: AbortSignal;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined when the body was empty or not JSON (see `parsed`). */
  json: unknown;
  /** False when a non-empty body was not JSON (a proxy's HTML page, say). */
  parsed: boolean;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads Retry-After in seconds (either form), or undefined. */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
  const raw = headers.get('retry-after');
  if (raw === null || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** A network-level failure code (ECONNREFUSED...) that is safe to repeat, or a generic phrase. */
function networkReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return 'no answer in time';
  }
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = cause?.code;
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : 'no response';
}

/** Network failures that mean the request never reached the provider: nothing can have been sent. */
const NEVER_ARRIVED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Whether a request that got no answer may still have been carried out (a message sent): yes,
 * unless the failure shows it never reached the provider. A timeout cannot tell, so it says maybe.
 */
export function deliveryAfterNetworkFailure(reason: string): ProviderDelivery {
  return NEVER_ARRIVED.has(reason) ? 'no' : 'maybe';
}

/**
 * Sends one request and reads its whole body under one deadline. Throws ProviderError
 * ('unavailable') when no HTTP answer came; any HTTP status is returned for the caller to map.
 */
export async function callProvider(request: HttpRequest): Promise<HttpAnswer> {
  const headers: Record<string, string> = { Accept: 'application/json', ...request.headers };
  let body: string | undefined;
  if (request.body instanceof URLSearchParams) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = request.body.toString();
  } else if (request.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(request.body.json);
  }

  const signal = request.deadline ?? AbortSignal.timeout(request.timeoutMs);
  let response: Response;
  let text: string;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers,
      body,
      // A redirect could carry the credentials to another host; a provider API never needs one.
      redirect: 'manual',
      signal,
    });
    text = await response.text();
  } catch (error) {
    const reason = networkReason(error);
    throw new ProviderError('unavailable', request.provider, `${request.action}: ${reason}`, {
      delivered: deliveryAfterNetworkFailure(reason),
    });
  }

  if (text.trim() === '')
    return { status: response.status, headers: response.headers, json: undefined, parsed: true };
  try {
    return { status: response.status, headers: response.headers, json: JSON.parse(text), parsed: true };
  } catch {
    return { status: response.status, headers: response.headers, json: undefined, parsed: false };
  }
}

/**
 * A 2xx whose body is not what the provider sends: we cannot tell what happened, so it is an
 * outage, and the request was accepted, so a message may have gone out.
 */
export function unexpectedBody(provider: string, action: string, status: number): ProviderError {
  return new ProviderError('unavailable', provider, `${action}: unexpected body (HTTP ${status})`, {
    delivered: 'maybe',
  });
}

/** A short, safe token from a provider's error body (an error code such as 60203 or SVC0002). */
export function safeCode(value: unknown): string | undefined {
  const text = typeof value === 'number' ? String(value) : value;
  return typeof text === 'string' && /^[A-Za-z0-9_.-]{1,16}$/.test(text) ? text : undefined;
}
