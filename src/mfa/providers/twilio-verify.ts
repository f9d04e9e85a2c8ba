import type { TwilioConfig } from './config.js';
import { ProviderError } from '../provider.js';
import type { Channel, MfaProvider, ProviderDelivery, VerifyOutcome } from '../provider.js';
import { basicAuth, callProvider, isRecord, retryAfterSeconds, safeCode, unexpectedBody } from './http.js';
import type { HttpAnswer } from './http.js';
import {
  createMemoryTwilioVerificationLedger,
  type StartedVerification,
  type TwilioVerificationLedger,
} from './twilio-verification-ledger.js';

export interface TwilioVerifyProviderOptions {
  config: TwilioConfig;
  /** Hard deadline for one HTTP call. */
  timeoutMs?: number;
  /** Milliseconds since the epoch; used to forget old verifications and to age pending ones. */
  now?: () => number;
  /**
   * How long the site accepts a code (MFA_CODE_TTL_MINUTES). A verification older than that can
   * no longer pass any challenge, so it may be cancelled whoever started it.
   */
  codeTtlMs?: number;
  /**
   * Who started each pending verification. Several instances share one (in Redis), so a code
   * started on one is understood by the others; by default it is this process's memory.
   */
  ledger?: TwilioVerificationLedger;
}

const NAME = 'twilio';
const TWILIO_CHANNELS: Record<Channel, string> = { sms: 'sms', voice: 'call' };

/** Twilio's default validity of a verification, and the fallback code lifetime. */
const TWILIO_VALIDITY_MS = 10 * 60_000;

const RATE_LIMIT_CODES = new Set([20429, 60203, 60212]);
// 60205: SMS to a landline; 60605: blocked by the Service's geo permissions; 60410: prefix blocked by Fraud Guard.
const NUMBER_CODES = new Set([60200, 60205, 60410, 60605]);

interface Verification {
  sid: string;
  /** More than one send attempt means Twilio re-used a verification that was already pending. */
  sendAttempts: number;
  /** When Twilio created it (its date_created), when the answer says. */
  createdAt?: number;
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
  const codeTtlMs = Math.min(options.codeTtlMs ?? TWILIO_VALIDITY_MS, TWILIO_VALIDITY_MS);
  const authorization = basicAuth(config.accountSid, config.authToken);
  const serviceUrl = `${config.baseUrl}/v2/Services/${encodeURIComponent(config.verifyServiceSid)}`;
  /** The verifications started (by any instance sharing the ledger): which number, scope and account each belongs to. */
  const ledger = options.ledger ?? createMemoryTwilioVerificationLedger({ now: () => new Date(now()) });

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

  async function cancelVerification(sid: string, deadline?: AbortSignal): Promise<void> {
    const answer = await call(
      'cancel verification',
      `/Verifications/${encodeURIComponent(sid)}`,
      { Status: 'canceled' },
      deadline,
    );
    await ledger.forget(sid);
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
    const created = typeof body.date_created === 'string' ? Date.parse(body.date_created) : Number.NaN;
    return { sid: body.sid, sendAttempts: attempts, createdAt: Number.isNaN(created) ? undefined : created };
  }

  /**
   * Another account's code is pending for this number: a new verification would re-send that
   * code, and cancelling it would take the code from its owner (eight accounts on one number
   * would keep cancelling the owner's). So no code is sent until it can no longer be accepted.
   * `delivered` says whether Twilio has already re-sent the pending code in answering this send.
   */
  function pendingForAnother(
    action: string,
    startedAt: number,
    delivered: ProviderDelivery = 'no',
  ): ProviderError {
    const waitSeconds = Math.max(1, Math.ceil((startedAt + codeTtlMs - now()) / 1000));
    return new ProviderError(
      'rate_limited',
      NAME,
      `${action}: a code for another account is pending for this number`,
      { retryAfterSeconds: waitSeconds, delivered },
    );
  }

  /**
   * Whether this send may cancel another account's pending verification: only when this account
   * has completed a code to the number (it holds the phone) and the pending one was started by an
   * account that never has, or by one the ledger does not know (started before a restart). Else a
   * stranger who registered with someone's number, asking for a code just before its owner each
   * time, could keep the owner from ever getting one.
   */
  const mayCancel = (provenHolder: boolean, pending: StartedVerification | null) =>
    provenHolder && (pending === null || pending.provenHolder !== true);

  /**
   * Whom a verification belongs to: an account, or a key of the verification API (a key is never
   * an account, whatever its number). The verifications of one owner may replace each other (a
   * key's new code voids its pending one to the number, as an account's does across its scopes);
   * another owner's are left alone, as above.
   */
  const ownerOf = (started: { account?: number; apiKey?: number }) =>
    started.apiKey !== undefined
      ? `key:${started.apiKey}`
      : started.account !== undefined
        ? `account:${started.account}`
        : undefined;

  /**
   * Runs what follows a send Twilio accepted (the ledger, a cancel and a second start): whatever
   * fails there, the code reached the phone, so the error says it was delivered and the limits the
   * send took stay taken (src/mfa/failed-send.ts): a store failing after each send must not make
   * every retry a free message.
   */
  async function afterSent<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ProviderError && error.delivered === 'yes') throw error;
      throw new ProviderError(
        error instanceof ProviderError ? error.kind : 'unavailable',
        NAME,
        `${action}: failed after the code was sent`,
        {
          cause: error,
          delivered: 'yes',
          ...(error instanceof ProviderError && error.retryAfterSeconds !== undefined
            ? { retryAfterSeconds: error.retryAfterSeconds }
            : {}),
        },
      );
    }
  }

  /**
   * Starts a verification that belongs to this send alone. If Twilio answers with a verification
   * that was already pending (a cancel that failed, a send racing this one, or one started before
   * a restart), its code could serve two challenges. When it is this account's own, or one this
   * account may cancel (see mayCancel), it is cancelled and a fresh one started. When it is
   * another account's, or of unknown origin and still young enough to be accepted, it is left
   * alone and this send is refused for now; Twilio has re-sent that code to the phone by then, so
   * the refusal says it was delivered.
   */
  async function startFresh(
    to: string,
    channel: Channel,
    holder: { owner: string | undefined; provenHolder: boolean },
    deadline: AbortSignal,
  ): Promise<string> {
    const action = `send ${channel} code`;
    const first = await startVerification(to, channel, deadline);
    // From here a message went out (Twilio sent or re-sent a code): a failure must say so.
    return afterSent(action, () => replaceIfReused(first, to, channel, holder, deadline));
  }

  async function replaceIfReused(
    first: Awaited<ReturnType<typeof startVerification>>,
    to: string,
    channel: Channel,
    holder: { owner: string | undefined; provenHolder: boolean },
    deadline: AbortSignal,
  ): Promise<string> {
    const action = `send ${channel} code`;
    const known = await ledger.find(first.sid);
    const reused = first.sendAttempts > 1 || known !== null;
    if (!reused) return first.sid;
    if (known && ownerOf(known) !== holder.owner && !mayCancel(holder.provenHolder, known)) {
      throw pendingForAnother(action, known.startedAt, 'yes');
    }
    if (!known && !mayCancel(holder.provenHolder, null)) {
      // Unknown origin: only a verification too old for any challenge may be cancelled.
      const createdAt = first.createdAt ?? now();
      if (now() - createdAt < codeTtlMs) throw pendingForAnother(action, createdAt, 'yes');
    }
    await cancelVerification(first.sid, deadline);
    const second = await startVerification(to, channel, deadline);
    if (second.sid === first.sid) {
      throw new ProviderError(
        'unavailable',
        NAME,
        `send ${channel} code: a cancelled verification came back`,
        { delivered: 'yes' },
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

    async send({ to, channel, scope, account, apiKey, provenHolder: claimedHolder = false }) {
      const deadline = AbortSignal.timeout(timeoutMs);
      const owner = ownerOf({ account, apiKey });
      // An API key has shown nothing about who holds the phone: whatever it says, its send never
      // cancels a code pending for an account (a login code would vanish without a word) or for
      // another key; it is refused (429 with the wait) until that code can no longer be accepted.
      // The other way round, an account that has proven the phone may cancel a key's pending code,
      // as it may a stranger's: else keys asking again and again could keep its owner from ever
      // logging in, and the key's check then hears "expired".
      const provenHolder = apiKey === undefined && claimedHolder;
      // Twilio keeps one pending verification per number and would re-send its code. Another
      // account's pending code is not cancelled (two accounts sharing a number cannot take each
      // other's codes), save by the phone's proven holder (see mayCancel); this send waits until
      // that code can no longer be accepted.
      const pending = await ledger.pendingFor(to);
      const othersLive = pending.filter(
        (entry) =>
          ownerOf(entry) !== owner && now() - entry.startedAt < codeTtlMs && !mayCancel(provenHolder, entry),
      );
      if (othersLive.length > 0) {
        throw pendingForAnother(
          `send ${channel} code`,
          Math.max(...othersLive.map((entry) => entry.startedAt)),
        );
      }
      // This account's own pending code (another scope, another browser), a code too old to be
      // accepted, or a stranger's when the holder asks, is cancelled first, so one code never
      // serves two scopes and every send is a new code. A failed cancel is caught by startFresh,
      // which sees the re-used verification.
      for (const { sid } of pending) await cancelVerification(sid, deadline).catch(() => undefined);
      const sid = await startFresh(to, channel, { owner, provenHolder }, deadline);
      await afterSent(`send ${channel} code`, () =>
        ledger.record({
          sid,
          to,
          scope,
          startedAt: now(),
          ...(provenHolder ? { provenHolder } : {}),
          ...(account === undefined ? {} : { account }),
          ...(apiKey === undefined ? {} : { apiKey }),
        }),
      );
      return { handle: sid };
    },

    async verify({ to, scope, code, handle }) {
      if (!handle) return 'invalid';
      const known = await ledger.find(handle);
      // A challenge only ever holds its own sid; a sid of another scope or number is refused here too.
      if (known && (known.scope !== scope || known.to !== to)) return 'invalid';
      // Checked by VerificationSid, never by To: a check by number would reach whichever
      // verification is pending for it, possibly another scope's.
      const answer = await call('verify code', '/VerificationCheck', { VerificationSid: handle, Code: code });
      const outcome = outcomeOfCheck(answer);
      // Twilio has settled it either way; the entry would expire by itself, so a ledger that does
      // not answer now must not turn Twilio's answer (an accepted code, say) into an error.
      if (outcome !== 'invalid') await ledger.forget(handle).catch(() => undefined);
      return outcome;
    },

    async cancel({ handle }) {
      if (handle) await cancelVerification(handle);
    },
  };
}
