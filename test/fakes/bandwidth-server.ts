import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { basicHeader, fakeClock, isJson, startFakeServer } from './fake-http.js';
import type { Exchange, FakeControls, LoggedRequest } from './fake-http.js';

/**
 * A loopback stand-in for Bandwidth's MFA API (https://mfa.bandwidth.com/api/v1), following
 * ../shared/reference/providers.md section 1. Request bodies are checked against the OpenAPI
 * schemas shipped inside bandwidth-sdk, so a body the real API would reject is rejected here too.
 *
 * Deliberate worst-case choices where Bandwidth's behaviour is unconfirmed:
 * - codes are NOT single use: a code verifies again and again inside its window;
 * - every code sent to (to, scope) stays valid for its window, not just the latest one.
 */

export type FakeBandwidthMode = 'ok' | 400 | 401 | 403 | 429 | 500 | 'garbage' | 'unexpected' | 'hang';
type Operation = 'messaging' | 'voice' | 'verify';

export interface FakeBandwidthOptions {
  accountId: string;
  username: string;
  password: string;
  /** When given, a send naming another application id gets 400, as a wrong app does at Bandwidth. */
  messagingApplicationId?: string;
  voiceApplicationId?: string;
  /** The fake's clock; codes are stamped with it and the verify window is measured with it. */
  now?: () => Date;
  /** Invalid verifies in a row, per (to, scope), before verifies get 429. */
  maxInvalidAttempts?: number;
}

export interface SentCode {
  to: string;
  scope: string;
  code: string;
  channel: 'sms' | 'voice';
  at: Date;
}

export type { LoggedRequest };

export interface FakeBandwidth extends FakeControls<FakeBandwidthMode> {
  /** http://127.0.0.1:PORT/api/v1, the form the production base URL has. */
  baseUrl: string;
  /** http://127.0.0.1:PORT, for callers that route /accounts/... without /api/v1. */
  origin: string;
  sentCodes(): SentCode[];
  lastCodeFor(to: string, scope?: string): string | undefined;
  setClock(now: () => Date): void;
}

const LOCK_MS = 2 * 60_000;
const ROUTE = /^(?:\/api\/v1)?\/accounts\/([^/]+)\/code\/(messaging|voice|verify)$/;

/** Compiles the request schema of one operation, following the spec's $refs from the path down. */
function loadValidators(): Record<Operation, ValidateFunction> {
  const require = createRequire(import.meta.url);
  const specPath = join(dirname(require.resolve('bandwidth-sdk/package.json')), 'bandwidth.yml');
  const spec = parse(readFileSync(specPath, 'utf8'));
  const resolve = (ref: string): any =>
    ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((node: any, key) => node[key], spec);
  // Schemas carry OpenAPI-only keys such as `example`, hence strict: false.
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'bandwidth.yml', components: { schemas: spec.components.schemas } });
  const compile = (operation: Operation) => {
    let body = spec.paths[`/accounts/{accountId}/code/${operation}`].post.requestBody;
    if (body.$ref) body = resolve(body.$ref);
    const schema = body.content['application/json'].schema;
    return ajv.compile(schema.$ref ? { $ref: `bandwidth.yml${schema.$ref}` } : schema);
  };
  return { messaging: compile('messaging'), voice: compile('voice'), verify: compile('verify') };
}

let validators: Record<Operation, ValidateFunction> | undefined;

const FORBIDDEN = 'User is not authorized to access this resource with an explicit deny';
const ATTEMPTS_EXCEEDED = 'This number has exceeded verification attempts, please wait 2 minutes';

/** Bandwidth's usual error shape. */
function bandwidthError(exchange: Exchange, status: number, message: string, headers = {}) {
  exchange.json(status, { error: message, requestId: randomUUID() }, headers);
}

export async function startFakeBandwidth(options: FakeBandwidthOptions): Promise<FakeBandwidth> {
  validators ??= loadValidators();
  const maxInvalid = options.maxInvalidAttempts ?? 5;
  const expectedAuth = basicHeader(options.username, options.password);
  const clock = fakeClock(options.now);
  const now = clock.now;
  const codes: SentCode[] = [];
  const attempts = new Map<string, { invalid: number; lockedUntil: number }>();
  const keyOf = (to: string, scope: string) => `${to}\u0000${scope}`;

  function generate(exchange: Exchange, operation: 'messaging' | 'voice', body: Record<string, any>) {
    const expectedApp =
      operation === 'messaging' ? options.messagingApplicationId : options.voiceApplicationId;
    if (expectedApp !== undefined && body.applicationId !== expectedApp) {
      return bandwidthError(exchange, 400, 'Invalid applicationId');
    }
    if (!String(body.message).includes('{CODE}')) {
      return bandwidthError(exchange, 400, 'message must contain {CODE}');
    }
    const digits: number = body.digits;
    const code = String(randomInt(0, 10 ** digits)).padStart(digits, '0');
    const channel = operation === 'messaging' ? 'sms' : 'voice';
    codes.push({ to: body.to, scope: body.scope ?? '2FA', code, channel, at: now() });
    if (channel === 'sms') {
      // 13-digit timestamp + 16 characters = the 29 the real messageId has.
      exchange.json(200, { messageId: `${Date.now()}${randomBytes(8).toString('hex')}` });
    } else {
      exchange.json(200, { callId: `c-${randomBytes(4).toString('hex')}-${randomUUID()}` }); // 47 characters
    }
  }

  function verify(exchange: Exchange, body: Record<string, any>) {
    const scope: string = body.scope ?? '2FA';
    const key = keyOf(body.to, scope);
    const at = now().getTime();
    const state = attempts.get(key) ?? { invalid: 0, lockedUntil: 0 };
    if (state.lockedUntil > at) return bandwidthError(exchange, 429, ATTEMPTS_EXCEEDED);
    const windowMs = Number(body.expirationTimeInMinutes) * 60_000;
    const valid = codes.some(
      (sent) =>
        sent.to === body.to &&
        sent.scope === scope &&
        sent.code === body.code &&
        at - sent.at.getTime() <= windowMs,
    );
    if (valid) {
      attempts.delete(key);
    } else {
      state.invalid += 1;
      if (state.invalid >= maxInvalid) Object.assign(state, { invalid: 0, lockedUntil: at + LOCK_MS });
      attempts.set(key, state);
    }
    exchange.json(200, { valid });
  }

  const server = await startFakeServer<FakeBandwidthMode>(
    (exchange) => {
      const { req, log } = exchange;
      const body = log.body;
      const route = ROUTE.exec(log.path);
      if (req.method !== 'POST' || !route) return exchange.json(404, { message: 'Not Found' });
      if (req.headers.authorization !== expectedAuth) return exchange.json(401, { message: 'Unauthorized' });
      if (decodeURIComponent(route[1]!) !== options.accountId)
        return exchange.json(403, { message: FORBIDDEN });
      if (!isJson(req) || typeof body !== 'object' || !body) {
        return bandwidthError(exchange, 400, 'Request body must be JSON');
      }
      const operation = route[2] as Operation;
      const validate = validators![operation];
      if (!validate(body)) return bandwidthError(exchange, 400, ajvMessage(validate));
      if (operation === 'verify') verify(exchange, body as Record<string, any>);
      else generate(exchange, operation, body as Record<string, any>);
    },
    {
      fail(exchange, mode, headers) {
        switch (mode) {
          case 'unexpected':
            return exchange.json(200, { valid: 'true', messageId: 42, callId: null });
          case 401:
            return exchange.json(401, { message: 'Unauthorized' });
          case 403:
            return exchange.json(403, { message: FORBIDDEN });
          case 400:
            return bandwidthError(exchange, 400, 'to number is required');
          case 429:
            return bandwidthError(exchange, 429, ATTEMPTS_EXCEEDED, headers);
          case 500:
            return bandwidthError(exchange, 500, 'Internal Error');
        }
      },
      crashBody: () => JSON.stringify({ error: 'Internal Error', requestId: randomUUID() }),
    },
  );

  return {
    ...server,
    baseUrl: `${server.origin}/api/v1`,
    sentCodes: () => codes.map((sent) => ({ ...sent })),
    // The site sends a scope per challenge ("login-…"); asking for "login" finds the newest of those.
    lastCodeFor: (to, scope = '2FA') =>
      codes.findLast((sent) => sent.to === to && (sent.scope === scope || sent.scope.startsWith(`${scope}-`)))
        ?.code,
    setClock: clock.setClock,
  };
}

function ajvMessage(validate: ValidateFunction): string {
  const first = validate.errors?.[0];
  if (!first) return 'Invalid request';
  return `${first.instancePath.replace(/^\//, '') || 'body'} ${first.message ?? 'is invalid'}`;
}
