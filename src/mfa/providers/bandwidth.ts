import { Configuration, MFAApi } from 'bandwidth-sdk';
import type { BandwidthConfig } from '../../config.js';
import { ProviderError } from '../provider.js';
import type { Channel, MfaProvider } from '../provider.js';

export interface BandwidthProviderOptions {
  config: BandwidthConfig;
  codeDigits: number;
  /** Hard deadline for one call, token fetch included. */
  timeoutMs?: number;
}

const NAME = 'bandwidth';

// Bandwidth fills in {SCOPE} ('login' or 'admin') and {CODE}. One {CODE} each: whether the API
// replaces a second occurrence is not documented.
const MESSAGES: Record<Channel, string> = {
  sms: 'Your {SCOPE} code is {CODE}',
  voice: 'This is your {SCOPE} verification code: {CODE}.',
};

/** What an axios rejection carries; read by shape so the app does not depend on axios itself. */
interface HttpFailure {
  code?: unknown;
  response?: { status?: unknown; headers?: Record<string, unknown>; data?: unknown };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Bandwidth takes the verify window in whole minutes, 1 to 15. Rounding down never widens the app's own expiry. */
function windowMinutes(maxAgeMinutes: number): number {
  if (!Number.isFinite(maxAgeMinutes)) return 1;
  return Math.min(15, Math.max(1, Math.floor(maxAgeMinutes)));
}

function retryAfterSeconds(headers: Record<string, unknown> | undefined): number | undefined {
  const raw = headers?.['retry-after'];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
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
    return new ProviderError('unavailable', NAME, `${action}: ${code}`);
  }
  // Bandwidth's requestId lets support find the call; nothing else from the body is repeated.
  const requestId = (failure.response?.data as { requestId?: unknown } | undefined)?.requestId;
  const reference =
    typeof requestId === 'string' && /^[\w-]{1,64}$/.test(requestId) ? ` (requestId ${requestId})` : '';
  const detail = `${action}: HTTP ${status}${reference}`;
  if (status === 400) return new ProviderError('invalid_number', NAME, detail);
  if (status === 401 || status === 403) return new ProviderError('auth', NAME, detail);
  if (status === 429) {
    const retryAfter = retryAfterSeconds(failure.response?.headers);
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
  // MFA gets its own Configuration: basePath overrides the server of every API class that shares one.
  const api = new MFAApi(
    new Configuration({
      ...credentials,
      basePath: config.baseUrl,
      // No redirects: following one could carry the Basic credentials to another host.
      baseOptions: { timeout: timeoutMs, maxRedirects: 0 },
    }),
  );

  return {
    name: NAME,
    channels: ['sms', 'voice'],

    async send({ to, channel, scope }) {
      const request = {
        to,
        from: config.fromNumber,
        applicationId: channel === 'sms' ? config.messagingApplicationId : config.voiceApplicationId,
        scope,
        message: MESSAGES[channel],
        digits: codeDigits,
      };
      const action = `send ${channel} code`;
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
      const handle = isRecord(data) ? data[channel === 'sms' ? 'messageId' : 'callId'] : undefined;
      if (typeof handle !== 'string')
        throw new ProviderError('unavailable', NAME, `${action}: unexpected body`);
      return { handle };
    },

    async verify({ to, scope, code, maxAgeMinutes }) {
      const request = { to, scope, code, expirationTimeInMinutes: windowMinutes(maxAgeMinutes) };
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
