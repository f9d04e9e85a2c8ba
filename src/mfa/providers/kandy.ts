import type { KandyConfig } from './config.js';
import { ProviderError } from '../provider.js';
import type { MfaProvider } from '../provider.js';
import type { CodeTexts } from '../sms-text.js';
import { callProvider, isRecord, retryAfterSeconds, safeCode, unexpectedBody } from './http.js';
import type { HttpAnswer } from './http.js';

export interface KandyProviderOptions {
  config: KandyConfig;
  codeDigits: number;
  codeTtlMinutes: number;
  /** Hard deadline for one operation, token fetch included. */
  timeoutMs?: number;
  /** Milliseconds since the epoch; decides when the token is refreshed. */
  now?: () => number;
  texts: CodeTexts;
}

const NAME = 'kandy';
const AUTH_PATH = '/cpaas/auth/v1';
/** Kandy accepts a code expiry of 30 to 3600 seconds. */
const MIN_EXPIRY_SECONDS = 30;
const MAX_EXPIRY_SECONDS = 3600;
/** When a token says nothing about its lifetime, assume a short one. */
const FALLBACK_TOKEN_LIFETIME_MS = 5 * 60_000;

interface Token {
  accessToken: string;
  /** The `preferred_username` of the id token: the {userId} of every 2FA path. */
  userId: string;
  refreshAt: number;
}

/** Reads a JWT's claims without checking its signature, as Kandy's SDKs do: it came from Kandy over TLS. */
function jwtClaims(token: unknown): Record<string, unknown> | undefined {
  if (typeof token !== 'string') return undefined;
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return isRecord(claims) ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** The first `messageId` (SVC0002, POL...) and its `variables` in an OMA-style error body, however deep. */
function kandyError(body: unknown, depth = 0): { messageId: string; variables: string[] } | undefined {
  if (!isRecord(body) || depth > 4) return undefined;
  if (typeof body.messageId === 'string') {
    const variables = Array.isArray(body.variables)
      ? body.variables.filter((v) => typeof v === 'string')
      : [];
    return { messageId: body.messageId, variables };
  }
  for (const value of Object.values(body)) {
    const found = kandyError(value, depth + 1);
    if (found) return found;
  }
  return undefined;
}

function toProviderError(answer: HttpAnswer, action: string, forToken = false): ProviderError {
  const { status } = answer;
  const error = kandyError(answer.json);
  // The OAuth error of the token endpoint ("invalid_client") is safe to repeat; its description is not kept.
  const oauthError = isRecord(answer.json) ? safeCode(answer.json.error) : undefined;
  const reference = safeCode(error?.messageId) ?? oauthError;
  const detail = `${action}: HTTP ${status}${reference ? ` (Kandy ${reference})` : ''}`;
  // The token endpoint refusing our client (400 invalid_client too) is configuration, whatever the status.
  if (status === 401 || status === 403 || (forToken && status === 400)) {
    return new ProviderError('auth', NAME, detail);
  }
  if (status === 429) {
    return new ProviderError('rate_limited', NAME, detail, {
      retryAfterSeconds: retryAfterSeconds(answer.headers),
    });
  }
  if (status === 400 || status === 404) {
    // A refusal that names another part of the request (message, format...) is the site's
    // configuration, not the person's number.
    const aboutAnotherPart = error && error.variables.length > 0 && !error.variables.includes('address');
    return new ProviderError(aboutAnotherPart ? 'auth' : 'invalid_number', NAME, detail);
  }
  return new ProviderError('unavailable', NAME, detail);
}

/**
 * Kandy CPaaS 2FA makes, sends (SMS only: Kandy has no voice method) and checks the codes. Each
 * code has its own codeId, kept in the challenge, so a code of one scope is never checked
 * against another's.
 */
export function createKandyProvider(options: KandyProviderOptions): MfaProvider {
  const { config, codeDigits, codeTtlMinutes, timeoutMs = 10_000 } = options;
  const now = options.now ?? Date.now;
  const expirySeconds = Math.min(MAX_EXPIRY_SECONDS, Math.max(MIN_EXPIRY_SECONDS, codeTtlMinutes * 60));
  let token: Token | undefined;
  let fetching: Promise<Token> | undefined;

  async function fetchToken(deadline: AbortSignal): Promise<Token> {
    const action = 'get access token';
    const answer = await callProvider({
      provider: NAME,
      action,
      method: 'POST',
      url: `${config.baseUrl}${AUTH_PATH}/token`,
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: config.clientId,
        client_secret: config.clientSecret,
        scope: 'openid',
      }),
      timeoutMs,
      deadline,
    });
    if (answer.status < 200 || answer.status >= 300) throw toProviderError(answer, action, true);
    const body = answer.json;
    const userId = jwtClaims(isRecord(body) ? body.id_token : undefined)?.preferred_username;
    if (
      !isRecord(body) ||
      typeof body.access_token !== 'string' ||
      typeof userId !== 'string' ||
      userId === ''
    ) {
      throw unexpectedBody(NAME, action, answer.status);
    }
    // Refresh once half the lifetime has passed, as Kandy's SDKs do. The lifetime is measured
    // from the token's own claims and counted on our clock, so clock skew does not matter.
    const claims = jwtClaims(body.access_token);
    const exp = claims?.exp;
    const iat = claims?.iat;
    let lifetimeMs = FALLBACK_TOKEN_LIFETIME_MS;
    if (typeof exp === 'number' && typeof iat === 'number' && exp > iat) lifetimeMs = (exp - iat) * 1000;
    else if (typeof body.expires_in === 'number' && body.expires_in > 0) lifetimeMs = body.expires_in * 1000;
    return { accessToken: body.access_token, userId, refreshAt: now() + lifetimeMs / 2 };
  }

  /** One token fetch at a time: requests arriving meanwhile wait for the same one. */
  function currentToken(deadline: AbortSignal, renew = false): Promise<Token> {
    if (!renew && token && now() < token.refreshAt) return Promise.resolve(token);
    fetching ??= fetchToken(deadline)
      .then((fresh) => (token = fresh))
      .finally(() => {
        fetching = undefined;
      });
    return fetching;
  }

  /** A 2FA call with the bearer token; a 401 (token revoked early) gets one retry with a new token. */
  async function callApi(
    action: string,
    method: 'POST' | 'PUT' | 'DELETE',
    path: string,
    json?: unknown,
  ): Promise<HttpAnswer> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const attempt = async (current: Token) =>
      callProvider({
        provider: NAME,
        action,
        method,
        url: `${config.baseUrl}${AUTH_PATH}/${encodeURIComponent(current.userId)}${path}`,
        headers: { Authorization: `Bearer ${current.accessToken}` },
        body: json === undefined ? undefined : { json },
        timeoutMs,
        deadline,
      });
    const answer = await attempt(await currentToken(deadline));
    if (answer.status !== 401) return answer;
    token = undefined;
    return attempt(await currentToken(deadline, true));
  }

  return {
    name: NAME,
    channels: ['sms'],

    async send({ to, channel, scope }) {
      const action = `send ${channel} code`;
      if (channel !== 'sms')
        throw new ProviderError('unavailable', NAME, `${action}: Kandy has no voice method`);
      const answer = await callApi(action, 'POST', '/codes', {
        code: {
          address: [to],
          method: 'sms',
          format: { length: codeDigits, type: 'numeric' },
          expiry: expirySeconds,
          // Kandy fills in {code}, once: the SMS carries it on its origin-bound last line.
          message: options.texts.smsTemplate(scope, '{code}'),
        },
      });
      if (answer.status < 200 || answer.status >= 300) throw toProviderError(answer, action);
      const resourceUrl =
        isRecord(answer.json) && isRecord(answer.json.code) ? answer.json.code.resourceURL : undefined;
      const codeId =
        typeof resourceUrl === 'string' ? resourceUrl.split('/').filter(Boolean).at(-1) : undefined;
      // Percent signs only as whole %XX escapes, so that decoding it cannot throw.
      if (!codeId || !/^(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,200}$/.test(codeId))
        throw unexpectedBody(NAME, action, answer.status);
      return { handle: decodeURIComponent(codeId) };
    },

    async verify({ code, handle }) {
      if (!handle) return 'invalid';
      const answer = await callApi('verify code', 'PUT', `/codes/${encodeURIComponent(handle)}/verify`, {
        code: { verify: code },
      });
      // Only 204 means verified (Kandy then removes the code). Kandy does not tell a wrong code
      // from an expired one, so every other refusal is 'invalid'; outages and auth stay errors.
      if (answer.status === 204) return 'valid';
      if (answer.status >= 200 && answer.status < 300) return 'invalid';
      if ([400, 404, 410].includes(answer.status)) return 'invalid';
      throw toProviderError(answer, 'verify code');
    },

    async cancel({ handle }) {
      if (!handle) return;
      const answer = await callApi('cancel code', 'DELETE', `/codes/${encodeURIComponent(handle)}`);
      if ((answer.status < 200 || answer.status >= 300) && answer.status !== 404) {
        throw toProviderError(answer, 'cancel code');
      }
    },
  };
}
