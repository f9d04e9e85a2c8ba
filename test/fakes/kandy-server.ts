import { randomBytes, randomInt } from 'node:crypto';
import { fakeClock, isForm, isJson, startFakeServer } from './fake-http.js';
import type { Exchange, FailureMode, FakeControls, LoggedRequest } from './fake-http.js';

/**
 * A loopback stand-in for a Kandy CPaaS tenant's 2FA API, following
 * ../shared/reference/providers.md section 4:
 * - POST /cpaas/auth/v1/token (client credentials) gives JWT-shaped access and id tokens; the
 *   access token expires (exp/iat) and is refused afterwards;
 * - POST /cpaas/auth/v1/{userId}/codes sends an SMS code and answers its resourceURL (the codeId);
 * - PUT  .../codes/{codeId}/verify answers 204 for the right, unexpired code and removes it;
 *   anything else gets 404 (wrong and expired are not told apart, as at Kandy);
 * - PUT  .../codes/{codeId} re-sends a new code; DELETE removes it.
 * Errors are OMA-style `{requestError:{serviceException:{messageId,text,variables}}}`; the token
 * endpoint answers OAuth-style `{error, error_description}`.
 */

export type { FailureMode, LoggedRequest };

export interface FakeKandyOptions {
  clientId: string;
  clientSecret: string;
  /** The id token's preferred_username: the {userId} in every 2FA path. */
  userId?: string;
  tokenLifetimeSeconds?: number;
  now?: () => Date;
}

export interface FakeKandyCode {
  codeId: string;
  to: string;
  code: string;
  message: string;
  expiresAt: Date;
}

export interface FakeKandy extends FakeControls {
  /** http://127.0.0.1:PORT, in place of the tenant's https://$KANDYFQDN$. */
  baseUrl: string;
  userId: string;
  sentCodes(): FakeKandyCode[];
  lastCodeFor(to: string): string | undefined;
  /** How many access tokens were handed out. */
  tokensIssued(): number;
  /** Revokes every access token, as an early revocation at Kandy would. */
  revokeTokens(): void;
  setClock(now: () => Date): void;
  /** The next code's id, as it is written in the answer's resourceURL (to answer a malformed one). */
  nameNextCode(codeId: string): void;
}

const ROUTE = /^\/cpaas\/auth\/v1\/([^/]+)\/codes(?:\/([^/]+))?(\/verify)?$/;

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function jwt(claims: Record<string, unknown>): string {
  return `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url(claims)}.${randomBytes(32).toString('base64url')}`;
}

function serviceError(
  exchange: Exchange,
  status: number,
  messageId: string,
  text: string,
  variables: string[] = [],
) {
  exchange.json(status, { requestError: { serviceException: { messageId, text, variables } } });
}

const invalidPart = (exchange: Exchange, part: string) =>
  serviceError(exchange, 400, 'SVC0002', 'Invalid input value for message part %1', [part]);

export async function startFakeKandy(options: FakeKandyOptions): Promise<FakeKandy> {
  const userId = options.userId ?? 'mfa-site-project';
  const lifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
  const clock = fakeClock(options.now);
  const now = clock.now;
  const tokens = new Map<string, number>(); // access token -> expiry (ms)
  let issued = 0;
  const codes = new Map<string, FakeKandyCode>();
  const sent: FakeKandyCode[] = [];

  function token(exchange: Exchange) {
    const form = (isForm(exchange.req) ? exchange.log.body : {}) as Record<string, string>;
    if (form.grant_type !== 'client_credentials') {
      return exchange.json(400, {
        error: 'unsupported_grant_type',
        error_description: 'Grant type not supported',
      });
    }
    if (form.client_id !== options.clientId || form.client_secret !== options.clientSecret) {
      return exchange.json(401, { error: 'invalid_client', error_description: 'Invalid client credentials' });
    }
    const iat = Math.floor(now().getTime() / 1000);
    const accessToken = jwt({ iat, exp: iat + lifetimeSeconds, sub: options.clientId, typ: 'Bearer' });
    tokens.set(accessToken, (iat + lifetimeSeconds) * 1000);
    issued += 1;
    exchange.json(200, {
      access_token: accessToken,
      id_token: jwt({ iat, exp: iat + lifetimeSeconds, preferred_username: userId, typ: 'ID' }),
      token_type: 'bearer',
      scope: 'openid',
    });
  }

  /** Validates a send/resend body; answers the error itself and returns undefined when it is bad. */
  function readCodeRequest(exchange: Exchange) {
    const body = exchange.log.body as { code?: Record<string, any> } | undefined;
    const request = isJson(exchange.req) && body && typeof body === 'object' ? body.code : undefined;
    if (!request || typeof request !== 'object') return invalidPart(exchange, 'code');
    const address = Array.isArray(request.address) ? request.address : undefined;
    const to = typeof address?.[0] === 'string' ? address[0].replace(/^tel:/, '') : '';
    if (address?.length !== 1 || !/^\+[1-9]\d{1,14}$/.test(to)) return invalidPart(exchange, 'address');
    if (request.method !== 'sms') return invalidPart(exchange, 'method');
    const length = request.format?.length ?? 6;
    if (!Number.isInteger(length) || length < 4 || length > 10) return invalidPart(exchange, 'format.length');
    if ((request.format?.type ?? 'numeric') !== 'numeric') return invalidPart(exchange, 'format.type');
    const expiry = request.expiry ?? 120;
    if (!Number.isInteger(expiry) || expiry < 30 || expiry > 3600) return invalidPart(exchange, 'expiry');
    if (typeof request.message !== 'string' || !request.message.includes('{code}')) {
      return invalidPart(exchange, 'message');
    }
    return { to, length: length as number, expiry: expiry as number, message: request.message as string };
  }

  let nextCodeId: string | undefined;

  function issue(codeId: string, request: { to: string; length: number; expiry: number; message: string }) {
    const code = String(randomInt(0, 10 ** request.length)).padStart(request.length, '0');
    const entry: FakeKandyCode = {
      codeId,
      to: request.to,
      code,
      message: request.message.replace('{code}', code),
      expiresAt: new Date(now().getTime() + request.expiry * 1000),
    };
    codes.set(codeId, entry);
    sent.push(entry);
    return { code: { resourceURL: `/cpaas/auth/v1/${userId}/codes/${codeId}` } };
  }

  function api(exchange: Exchange) {
    const { req, log } = exchange;
    const bearer = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
    const expiry = bearer ? tokens.get(bearer) : undefined;
    if (expiry === undefined || expiry <= now().getTime()) {
      return serviceError(exchange, 401, 'SVC0001', 'Invalid or expired access token');
    }
    const route = ROUTE.exec(log.path);
    if (!route) return serviceError(exchange, 404, 'SVC0004', 'Resource not found');
    if (decodeURIComponent(route[1]!) !== userId) {
      return exchange.json(403, {
        requestError: { policyException: { messageId: 'POL0001', text: 'Policy error', variables: [] } },
      });
    }
    const codeId = route[2] && decodeURIComponent(route[2]);
    const existing = codeId ? codes.get(codeId) : undefined;
    const isLive = existing !== undefined && existing.expiresAt.getTime() > now().getTime();
    const notFound = () => serviceError(exchange, 404, 'SVC0004', 'Code invalid or expired');

    if (!codeId && req.method === 'POST') {
      const request = readCodeRequest(exchange);
      if (request) {
        exchange.json(201, issue(nextCodeId ?? randomBytes(12).toString('hex'), request));
        nextCodeId = undefined;
      }
      return;
    }
    if (codeId && route[3] && req.method === 'PUT') {
      const body = log.body as { code?: { verify?: unknown } } | undefined;
      const typed = isJson(req) ? body?.code?.verify : undefined;
      if (typeof typed !== 'string') return invalidPart(exchange, 'verify');
      if (!isLive || typed !== existing.code) return notFound();
      codes.delete(codeId);
      return exchange.empty(204);
    }
    if (codeId && !route[3] && req.method === 'PUT') {
      if (!existing) return notFound();
      const request = readCodeRequest(exchange);
      if (request) exchange.json(200, issue(codeId, request));
      return;
    }
    if (codeId && !route[3] && req.method === 'DELETE') {
      if (!existing) return notFound();
      codes.delete(codeId);
      return exchange.empty(204);
    }
    serviceError(exchange, 405, 'SVC0003', 'Method not allowed');
  }

  const server = await startFakeServer(
    (exchange) => {
      if (exchange.log.path === '/cpaas/auth/v1/token' && exchange.req.method === 'POST')
        return token(exchange);
      return api(exchange);
    },
    {
      fail(exchange, mode, headers) {
        switch (mode) {
          case 400:
            return invalidPart(exchange, 'address');
          case 401:
            return serviceError(exchange, 401, 'SVC0001', 'Invalid or expired access token');
          case 403:
            return exchange.json(403, {
              requestError: {
                policyException: { messageId: 'POL0001', text: 'Policy error', variables: [] },
              },
            });
          case 429:
            return exchange.json(
              429,
              {
                requestError: {
                  policyException: { messageId: 'POL0008', text: 'Rate limit exceeded', variables: [] },
                },
              },
              headers,
            );
          default:
            return serviceError(exchange, mode, 'SVC1000', 'Internal error');
        }
      },
    },
  );

  return {
    ...server,
    baseUrl: server.origin,
    userId,
    sentCodes: () => sent.map((entry) => ({ ...entry })),
    lastCodeFor: (to) => sent.findLast((entry) => entry.to === to)?.code,
    tokensIssued: () => issued,
    revokeTokens: () => tokens.clear(),
    setClock: clock.setClock,
    nameNextCode(codeId) {
      nextCodeId = codeId;
    },
  };
}
