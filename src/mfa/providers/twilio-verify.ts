import type { TwilioConfig } from '../../config.js';
import { ProviderError } from '../provider.js';
import type { Channel, MfaProvider, Scope, VerifyOutcome } from '../provider.js';
import { basicAuth, callProvider, isRecord, retryAfterSeconds, safeCode, unexpectedBody } from './http.js';
import type { HttpAnswer } from './http.js';

export interface TwilioVerifyProviderOptions {
  config: TwilioConfig;
  /** Hard deadline for one HTTP call. */
  timeoutMs?: number;
  /** Milliseconds since the epoch; only used to forget old verifications. */
  now?: () => number;
}

const NAME = 'twilio';
const TWILIO_CHANNELS: Record<Channel, string> = { sms: 'sms', voice: 'call' };

/**
 * How long a started verification is remembered. Twilio's default validity is 10 minutes; a
 * Service configured for longer is still safe, because a re-used verification is detected from
 * Twilio's own answer (see startFresh).
 */
const REMEMBER_MS = 30 * 60_000;

const RATE_LIMIT_CODES = new Set([20429, 60203, 60212]);
// 60205: SMS to a landline; 60605: blocked by the Service's geo permissions; 60410: prefix blocked by Fraud Guard.
const NUMBER_CODES = new Set([60200, 60205, 60410, 60605]);

interface Started {
  to: string;
  scope: Scope;
  at: number;
}

interface Verification {
  sid: string;
  /** More than one send attempt means Twilio re-used a verification that was already pending. */
  sendAttempts: number;
}

function twilioCode(answer: HttpAnswer): number | undefined {
  const code = isRecord(answer.json) ? answer.json.code : undefined;
  return typeof code === 'number'
    ? code
    : typeof code === 'string' && /^\d+$/.test(code)
      ? Number(code)
      : undefined;
}

/** Twilio's error body `{code, message, more_info, status}` to a ProviderError; only the status and code are kept. */
function toProviderError(answer: HttpAnswer, action: string): ProviderError {
  const { status } = answer;
  const code = twilioCode(answer);
  const detail = `${action}: HTTP ${status}${code !== undefined ? ` (Twilio ${safeCode(code)})` : ''}`;
  if (status === 401 || code === 20003) return new ProviderError('auth', NAME, detail);
  if (status === 429 || (code !== undefined && RATE_LIMIT_CODES.has(code))) {
    return new ProviderError('rate_limited', NAME, detail, {
      retryAfterSeconds: retryAfterSeconds(answer.headers),
    });
  }
  if (code !== undefined && NUMBER_CODES.has(code)) return new ProviderError('invalid_number', NAME, detail);
  // 403 (no access to Verify), 404 (no such Service), 60223 (channel disabled on the Service): configuration.
  if (status === 403 || status === 404 || code === 60223) return new ProviderError('auth', NAME, detail);
  if (status === 400) return new ProviderError('invalid_number', NAME, detail);
  return new ProviderError('unavailable', NAME, detail);
}

const isSuccess = (answer: HttpAnswer) => answer.status >= 200 && answer.status < 300;

/**
 * Twilio Verify v2 makes, delivers and checks the codes. Twilio has no scope field and re-sends
 * the same code while a verification is pending for a number, so this adapter keeps login and
 * admin apart itself: each code is its own verification, checked by its sid, and a pending
 * verification for the number is cancelled before a new one starts.
 */
export function createTwilioVerifyProvider(options: TwilioVerifyProviderOptions): MfaProvider {
  const { config, timeoutMs = 10_000 } = options;
  const now = options.now ?? Date.now;
  const authorization = basicAuth(config.accountSid, config.authToken);
  const serviceUrl = `${config.baseUrl}/v2/Services/${encodeURIComponent(config.verifyServiceSid)}`;
  /** The verifications this process started, by sid: which number and scope each belongs to. */
  const started = new Map<string, Started>();

  /** One HTTP call; the calls of one send share a deadline, so a send never takes longer than timeoutMs. */
  const call = (action: string, path: string, form: Record<string, string>, deadline?: AbortSignal) =>
    callProvider({
      provider: NAME,
      action,
      method: 'POST',
      url: `${serviceUrl}${path}`,
      headers: { Authorization: authorization },
      body: new URLSearchParams(form),
      timeoutMs,
      deadline,
    });

  function forgetOld() {
    const cutoff = now() - REMEMBER_MS;
    for (const [sid, entry] of started) if (entry.at < cutoff) started.delete(sid);
  }

  async function cancelVerification(sid: string, deadline?: AbortSignal): Promise<void> {
    const answer = await call(
      'cancel verification',
      `/Verifications/${encodeURIComponent(sid)}`,
      { Status: 'canceled' },
      deadline,
    );
    started.delete(sid);
    // 404: already approved, expired or cancelled, which is what we wanted.
    if (!isSuccess(answer) && answer.status !== 404) throw toProviderError(answer, 'cancel verification');
  }

  async function startVerification(
    to: string,
    channel: Channel,
    deadline: AbortSignal,
  ): Promise<Verification> {
    const action = `send ${channel} code`;
    const answer = await call(
      action,
      '/Verifications',
      { To: to, Channel: TWILIO_CHANNELS[channel] },
      deadline,
    );
    if (!isSuccess(answer)) throw toProviderError(answer, action);
    const body = answer.json;
    if (!isRecord(body) || typeof body.sid !== 'string' || !/^[A-Za-z0-9]{2,64}$/.test(body.sid)) {
      throw unexpectedBody(NAME, action, answer.status);
    }
    const attempts = Array.isArray(body.send_code_attempts) ? body.send_code_attempts.length : 1;
    return { sid: body.sid, sendAttempts: attempts };
  }

  /**
   * Starts a verification that belongs to this scope alone. If Twilio answers with a verification
   * that was already pending (started before a restart, or by a cancel that failed) and it is not
   * known to be this scope's, its code could serve two scopes: cancel it and start again.
   */
  async function startFresh(
    to: string,
    channel: Channel,
    scope: Scope,
    deadline: AbortSignal,
  ): Promise<string> {
    const first = await startVerification(to, channel, deadline);
    const known = started.get(first.sid);
    const reused = first.sendAttempts > 1 || known !== undefined;
    if (!reused || (known?.scope === scope && known.to === to)) return first.sid;
    await cancelVerification(first.sid, deadline);
    const second = await startVerification(to, channel, deadline);
    if (second.sid === first.sid) {
      throw new ProviderError(
        'unavailable',
        NAME,
        `send ${channel} code: a cancelled verification came back`,
      );
    }
    return second.sid;
  }

  function outcomeOfCheck(answer: HttpAnswer): VerifyOutcome {
    const action = 'verify code';
    if (isSuccess(answer)) {
      const body = answer.json;
      if (!isRecord(body) || typeof body.status !== 'string')
        throw unexpectedBody(NAME, action, answer.status);
      // Only Twilio's explicit approval counts; anything else is never a pass.
      if (body.status === 'approved' && body.valid === true) return 'valid';
      if (body.status === 'pending') return 'invalid';
      if (body.status === 'max_attempts_reached') return 'locked';
      if (['canceled', 'expired', 'deleted', 'failed'].includes(body.status)) return 'expired';
      throw unexpectedBody(NAME, action, answer.status);
    }
    const code = twilioCode(answer);
    // Approved, expired (10 minutes), cancelled or out of attempts: Twilio has deleted it.
    if (answer.status === 404 || code === 20404) return 'expired';
    if (code === 60202) return 'locked';
    // On a check the only field a person controls is Code; a malformed one is simply not the code.
    if (answer.status === 400 && code === 60200) return 'invalid';
    throw toProviderError(answer, action);
  }

  return {
    name: NAME,
    channels: ['sms', 'voice'],

    async send({ to, channel, scope }) {
      forgetOld();
      const deadline = AbortSignal.timeout(timeoutMs);
      // Twilio keeps one pending verification per number and would re-send its code: whatever is
      // pending for this number (another scope, another browser) is cancelled first, so one code
      // can never serve two scopes and every send is a new code. A failed cancel is caught by
      // startFresh, which sees the re-used verification in Twilio's answer.
      for (const [sid, entry] of started) {
        if (entry.to === to) await cancelVerification(sid, deadline).catch(() => undefined);
      }
      const sid = await startFresh(to, channel, scope, deadline);
      started.set(sid, { to, scope, at: now() });
      return { handle: sid };
    },

    async verify({ to, scope, code, handle }) {
      if (!handle) return 'invalid';
      const known = started.get(handle);
      // A challenge only ever holds its own sid; a sid of another scope or number is refused here too.
      if (known && (known.scope !== scope || known.to !== to)) return 'invalid';
      // Checked by VerificationSid, never by To: a check by number would reach whichever
      // verification is pending for it, possibly another scope's.
      const answer = await call('verify code', '/VerificationCheck', { VerificationSid: handle, Code: code });
      const outcome = outcomeOfCheck(answer);
      if (outcome !== 'invalid') started.delete(handle);
      return outcome;
    },

    async cancel({ handle }) {
      if (handle) await cancelVerification(handle);
    },
  };
}
