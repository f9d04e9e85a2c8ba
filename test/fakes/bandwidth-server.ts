import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';

/**
 * A loopback stand-in for Bandwidth's MFA API (https://mfa.bandwidth.com/api/v1), following
 * /work/shared/reference/providers.md section 1. Request bodies are checked against the OpenAPI
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

export interface LoggedRequest {
  method: string;
  path: string;
  /** 'basic', 'bearer' or 'none'; never the credentials themselves. */
  auth: string;
  body: unknown;
  /** The status answered; undefined while a request hangs. */
  status?: number;
}

export interface FakeBandwidth {
  /** http://127.0.0.1:PORT/api/v1, the form the production base URL has. */
  baseUrl: string;
  /** http://127.0.0.1:PORT, for callers that route /accounts/... without /api/v1. */
  origin: string;
  requests: LoggedRequest[];
  sentCodes(): SentCode[];
  lastCodeFor(to: string, scope?: string): string | undefined;
  /** Answer only the next request this way, then go back to the current mode. */
  failNext(mode: FakeBandwidthMode, options?: { retryAfter?: string }): void;
  /** Answer every request this way until changed ('ok' is normal behaviour). */
  setMode(mode: FakeBandwidthMode): void;
  setClock(now: () => Date): void;
  close(): Promise<void>;
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

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function authScheme(header: string | undefined): string {
  return header?.split(' ')[0]?.toLowerCase() ?? 'none';
}

export async function startFakeBandwidth(options: FakeBandwidthOptions): Promise<FakeBandwidth> {
  validators ??= loadValidators();
  const maxInvalid = options.maxInvalidAttempts ?? 5;
  const expectedAuth = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
  let now = options.now ?? (() => new Date());
  let mode: FakeBandwidthMode = 'ok';
  let once: { mode: FakeBandwidthMode; retryAfter?: string } | undefined;
  const requests: LoggedRequest[] = [];
  const codes: SentCode[] = [];
  const attempts = new Map<string, { invalid: number; lockedUntil: number }>();
  const keyOf = (to: string, scope: string) => `${to}\u0000${scope}`;

  const send = (res: ServerResponse, log: LoggedRequest, status: number, body: unknown, headers = {}) => {
    log.status = status;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, log: LoggedRequest, status: number, message: string, headers = {}) =>
    send(res, log, status, { error: message, requestId: randomUUID() }, headers);

  function generate(
    operation: 'messaging' | 'voice',
    body: Record<string, any>,
    res: ServerResponse,
    log: LoggedRequest,
  ) {
    const expectedApp =
      operation === 'messaging' ? options.messagingApplicationId : options.voiceApplicationId;
    if (expectedApp !== undefined && body.applicationId !== expectedApp) {
      return error(res, log, 400, 'Invalid applicationId');
    }
    if (!String(body.message).includes('{CODE}')) return error(res, log, 400, 'message must contain {CODE}');
    const digits: number = body.digits;
    const code = String(randomInt(0, 10 ** digits)).padStart(digits, '0');
    const channel = operation === 'messaging' ? 'sms' : 'voice';
    codes.push({ to: body.to, scope: body.scope ?? '2FA', code, channel, at: now() });
    if (channel === 'sms') {
      // 13-digit timestamp + 16 characters = the 29 the real messageId has.
      send(res, log, 200, { messageId: `${Date.now()}${randomBytes(8).toString('hex')}` });
    } else {
      send(res, log, 200, { callId: `c-${randomBytes(4).toString('hex')}-${randomUUID()}` }); // 47 characters
    }
  }

  function verify(body: Record<string, any>, res: ServerResponse, log: LoggedRequest) {
    const scope: string = body.scope ?? '2FA';
    const key = keyOf(body.to, scope);
    const at = now().getTime();
    const state = attempts.get(key) ?? { invalid: 0, lockedUntil: 0 };
    if (state.lockedUntil > at) {
      return error(res, log, 429, 'This number has exceeded verification attempts, please wait 2 minutes');
    }
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
    send(res, log, 200, { valid });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    const log: LoggedRequest = {
      method: req.method ?? '',
      path,
      auth: authScheme(req.headers.authorization),
      body,
    };
    requests.push(log);

    const forced: { mode: FakeBandwidthMode; retryAfter?: string } = once ?? { mode };
    once = undefined;
    switch (forced.mode) {
      case 'hang':
        return; // never answer; close() destroys the socket
      case 'garbage':
        log.status = 200;
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<html><body>502 Bad Gateway</body></html>');
      case 'unexpected':
        return send(res, log, 200, { valid: 'true', messageId: 42, callId: null });
      case 401:
        return send(res, log, 401, { message: 'Unauthorized' });
      case 403:
        return send(res, log, 403, {
          message: 'User is not authorized to access this resource with an explicit deny',
        });
      case 400:
        return error(res, log, 400, 'to number is required');
      case 429: {
        const headers = forced.retryAfter !== undefined ? { 'retry-after': forced.retryAfter } : {};
        return error(
          res,
          log,
          429,
          'This number has exceeded verification attempts, please wait 2 minutes',
          headers,
        );
      }
      case 500:
        return error(res, log, 500, 'Internal Error');
    }

    const route = ROUTE.exec(path);
    if (req.method !== 'POST' || !route) return send(res, log, 404, { message: 'Not Found' });
    if (req.headers.authorization !== expectedAuth) return send(res, log, 401, { message: 'Unauthorized' });
    if (decodeURIComponent(route[1]!) !== options.accountId) {
      return send(res, log, 403, {
        message: 'User is not authorized to access this resource with an explicit deny',
      });
    }
    if (
      !/^application\/json\b/i.test(req.headers['content-type'] ?? '') ||
      typeof body !== 'object' ||
      !body
    ) {
      return error(res, log, 400, 'Request body must be JSON');
    }
    const operation = route[2] as Operation;
    const validate = validators![operation];
    if (!validate(body)) return error(res, log, 400, ajvMessage(validate));
    if (operation === 'verify') verify(body as Record<string, any>, res, log);
    else generate(operation, body as Record<string, any>, res, log);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Internal Error', requestId: randomUUID() }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl: `${origin}/api/v1`,
    origin,
    requests,
    sentCodes: () => codes.map((sent) => ({ ...sent })),
    // The site sends a scope per challenge ("login-…"); asking for "login" finds the newest of those.
    lastCodeFor: (to, scope = '2FA') =>
      codes.findLast((sent) => sent.to === to && (sent.scope === scope || sent.scope.startsWith(`${scope}-`)))
        ?.code,
    failNext: (next, { retryAfter } = {}) => {
      once = { mode: next, retryAfter };
    },
    setMode: (next) => {
      mode = next;
    },
    setClock: (clock) => {
      now = clock;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Hung requests and keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function ajvMessage(validate: ValidateFunction): string {
  const first = validate.errors?.[0];
  if (!first) return 'Invalid request';
  return `${first.instancePath.replace(/^\//, '') || 'body'} ${first.message ?? 'is invalid'}`;
}
