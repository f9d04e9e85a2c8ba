import { randomBytes } from 'node:crypto';
import type { MFAApi } from 'bandwidth-sdk';
import type { BandwidthConfig } from './config.js';
import { ProviderError } from '../provider.js';
import type { Channel, MfaProvider, Scope } from '../provider.js';
import type { CodeTexts } from '../sms-text.js';
import { deliveryAfterNetworkFailure, isRecord, retryAfterSeconds } from './http.js';

export interface BandwidthProviderOptions {
  config: BandwidthConfig;
  codeDigits: number;
  /** Hard deadline for one call, token fetch included. */
  timeoutMs?: number;
  texts: CodeTexts;
}

const NAME = 'bandwidth';

// Bandwidth fills in {CODE} (once: whether it replaces a second occurrence is not documented, so
// the SMS carries it once, on its origin-bound last line). The scope is written out in words,
// since the scope sent to Bandwidth is the challenge's own.
function messageFor(texts: CodeTexts, channel: Channel, scope: Scope): string {
  return channel === 'sms' ? texts.smsTemplate(scope, '{CODE}') : `${texts.spokenIntro(scope)} {CODE}.`;
}

/**
 * Bandwidth accepts any code sent to a number and scope within the window, and cannot void one.
 * So each challenge gets a scope of its own ("login-" or "admin-" and 16 random characters, within
 * Bandwidth's 25): a code then satisfies only the challenge it was sent for, never another
 * session's, a resent-away one, or the other kind of scope.
 */
function challengeScope(scope: Scope): string {
  return `${scope}-${randomBytes(12).toString('base64url')}`;
}

/** What an axios rejection carries; read by shape so the app does not depend on axios itself. */
interface HttpFailure {
  code?: unknown;
  response?: { status?: unknown; headers?: Record<string, unknown>; data?: unknown };
}

/** Bandwidth takes the verify window in whole minutes, 1 to 15. Rounding down never widens the app's own expiry. */
function windowMinutes(maxAgeMinutes: number): number {
  if (!Number.isFinite(maxAgeMinutes)) return 1;
  return Math.min(15, Math.max(1, Math.floor(maxAgeMinutes)));
}

/**
 * Turns a failed call into a ProviderError. The message names only the action, the HTTP status or
 * network code and Bandwidth's requestId. The axios error is deliberately not kept as `cause`: its
 * config holds the credentials and the request body (number and code), and loggers print causes.
 */
function toProviderError(error: unknown, action: string): ProviderError {
  const failure = (isRecord(error) ? error : {}) as HttpFailure;
  const status = failure.response?.status;
  if (typeof status !== 'number') {
    const code =
      typeof failure.code === 'string' && /^[A-Z_]{1,40}$/.test(failure.code) ? failure.code : 'no response';
    return new ProviderError('unavailable', NAME, `${action}: ${code}`, {
      delivered: deliveryAfterNetworkFailure(code),
    });
  }
  // Bandwidth's requestId lets support find the call; nothing else from the body is repeated.
  const requestId = (failure.response?.data as { requestId?: unknown } | undefined)?.requestId;
  const reference =
    typeof requestId === 'string' && /^[\w-]{1,64}$/.test(requestId) ? ` (requestId ${requestId})` : '';
  const detail = `${action}: HTTP ${status}${reference}`;
  if (status === 400) return new ProviderError('invalid_number', NAME, detail);
  if (status === 401 || status === 403) return new ProviderError('auth', NAME, detail);
  if (status === 429) {
    const header = failure.response?.headers?.['retry-after'];
    const retryAfter =
      typeof header === 'string' ? retryAfterSeconds(new Headers({ 'retry-after': header })) : undefined;
    return new ProviderError('rate_limited', NAME, detail, { retryAfterSeconds: retryAfter });
  }
  return new ProviderError('unavailable', NAME, detail);
}

/**
 * Runs one SDK call under a hard deadline. The signal aborts the HTTP request itself (axios's own
 * `timeout` only watches for an idle socket); the race also covers the SDK's OAuth token fetch,
 * which uses the global axios and cannot be given a signal.
 */
async function withDeadline<T>(timeoutMs: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  let onAbort = () => {};
  const expired = new Promise<never>((_, reject) => {
    onAbort = () => reject(Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([call(signal), expired]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Bandwidth's MFA API makes, delivers and checks the codes; this file only speaks its HTTP contract. */
export function createBandwidthProvider(options: BandwidthProviderOptions): MfaProvider {
  const { config, codeDigits, timeoutMs = 10_000 } = options;
  const credentials =
    config.username !== undefined
      ? { username: config.username, password: config.password }
      : // The SDK's own OAuth2 flow POSTs to a hard-coded https://api.bandwidth.com/api/v1/oauth2/token
        // (ignoring basePath) and caches the token on this Configuration until a minute before expiry.
        { clientId: config.clientId, clientSecret: config.clientSecret };
  // The SDK (with axios) takes about 0.3 s to load: it is loaded at the first code, not at start,
  // so a site that names Bandwidth only as a fallback, or is just starting, does not wait for it.
  let loaded: Promise<MFAApi> | undefined;
  const mfaApi = () =>
    (loaded ??= import('bandwidth-sdk').then(
      ({ Configuration, MFAApi }) =>
        // MFA gets its own Configuration: basePath overrides the server of every API class that shares one.
        new MFAApi(
          new Configuration({
            ...credentials,
            basePath: config.baseUrl,
            // No redirects: following one could carry the Basic credentials to another host.
            baseOptions: { timeout: timeoutMs, maxRedirects: 0 },
          }),
        ),
    ));

  return {
    name: NAME,
    channels: ['sms', 'voice'],

    async send({ to, channel, scope }) {
      const ownScope = challengeScope(scope);
      const request = {
        to,
        from: config.fromNumber,
        applicationId: channel === 'sms' ? config.messagingApplicationId : config.voiceApplicationId,
        scope: ownScope,
        message: messageFor(options.texts, channel, scope),
        digits: codeDigits,
      };
      const action = `send ${channel} code`;
      // Loading the SDK is not the call: it does not count against the call's deadline.
      const api = await mfaApi();
      let data: unknown;
      try {
        data = await withDeadline(timeoutMs, async (signal) => {
          const generate = channel === 'sms' ? 'generateMessagingCode' : 'generateVoiceCode';
          return (await api[generate](config.accountId, request, { signal })).data;
        });
      } catch (error) {
        throw toProviderError(error, action);
      }
      // A 2xx without the id is not Bandwidth talking (a proxy page, say): we cannot tell whether a code went out.
      const deliveryId = isRecord(data) ? data[channel === 'sms' ? 'messageId' : 'callId'] : undefined;
      if (typeof deliveryId !== 'string')
        throw new ProviderError('unavailable', NAME, `${action}: unexpected body`, { delivered: 'maybe' });
      return { handle: ownScope };
    },

    async verify({ to, scope, code, handle, maxAgeMinutes }) {
      // The handle is the challenge's own Bandwidth scope; it must belong to the scope being checked.
      if (!handle?.startsWith(`${scope}-`)) return 'invalid';
      const request = { to, scope: handle, code, expirationTimeInMinutes: windowMinutes(maxAgeMinutes) };
      const api = await mfaApi();
      let data: unknown;
      try {
        data = await withDeadline(timeoutMs, async (signal) => {
          return (await api.verifyCode(config.accountId, request, { signal })).data;
        });
      } catch (error) {
        const failure = toProviderError(error, 'verify code');
        // On verify, 429 means "too many invalid codes for this number and scope", not a send limit.
        if (failure.kind === 'rate_limited') return 'locked';
        throw failure;
      }
      // Only a literal boolean true counts; anything unexpected is an error, never a pass.
      if (!isRecord(data) || typeof data.valid !== 'boolean') {
        throw new ProviderError('unavailable', NAME, 'verify code: unexpected body');
      }
      return data.valid === true ? 'valid' : 'invalid';
    },
  };
}
