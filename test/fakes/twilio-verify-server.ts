import { randomBytes, randomInt } from 'node:crypto';
import { basicHeader, fakeClock, isForm, startFakeServer } from './fake-http.js';
import type { Exchange, FailureMode, FakeControls, LoggedRequest } from './fake-http.js';

/**
 * A loopback stand-in for Twilio Verify v2 (https://verify.twilio.com), following
 * ../shared/reference/providers.md section 2: form bodies, Basic AccountSid:AuthToken,
 * Twilio's `{code, message, more_info, status}` errors, and Verify's lifecycle:
 * - one pending verification per number; starting again while it is pending re-sends the SAME code;
 * - a code lives 10 minutes; approved, expired, cancelled or out-of-attempts verifications are
 *   deleted, and a check then gets 404 / 20404;
 * - 5 checks per verification, the next gets 429 / 60202;
 * - 5 sends to one number per 10 minutes, the next gets 429 / 60203 with Retry-After.
 * Codes reach tests only through sentCodes()/lastCodeFor(), never through a normal response.
 */

export type { FailureMode, LoggedRequest };

export interface FakeTwilioOptions {
  accountSid: string;
  authToken: string;
  serviceSid: string;
  /** The Service's CodeLength (4 to 10). */
  codeLength?: number;
  now?: () => Date;
}

type Status = 'pending' | 'approved' | 'canceled' | 'max_attempts_reached' | 'expired';

export interface FakeVerification {
  sid: string;
  to: string;
  channel: string;
  code: string;
  status: Status;
  createdAt: Date;
  checks: number;
  sendAttempts: { time: string; channel: string; attempt_sid: string }[];
}

export interface SentTwilioCode {
  sid: string;
  to: string;
  channel: string;
  code: string;
  at: Date;
}

export interface FakeTwilio extends FakeControls {
  /** http://127.0.0.1:PORT, in place of https://verify.twilio.com. */
  baseUrl: string;
  sentCodes(): SentTwilioCode[];
  lastCodeFor(to: string): string | undefined;
  verification(sid: string): FakeVerification | undefined;
  setClock(now: () => Date): void;
}

export const TWILIO_VALIDITY_MS = 10 * 60_000;
const MAX_CHECKS = 5;
const MAX_SENDS = 5;
const CHANNELS = ['sms', 'call', 'email', 'whatsapp', 'sna'];

function twilioError(exchange: Exchange, status: number, code: number, message: string, headers = {}) {
  exchange.json(
    status,
    { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    headers,
  );
}

export async function startFakeTwilio(options: FakeTwilioOptions): Promise<FakeTwilio> {
  const codeLength = options.codeLength ?? 6;
  const expectedAuth = basicHeader(options.accountSid, options.authToken);
  const clock = fakeClock(options.now);
  const now = clock.now;
  const verifications = new Map<string, FakeVerification>();
  const sent: SentTwilioCode[] = [];
  const sendsByNumber = new Map<string, number[]>();

  /** Expiry is applied lazily: a verification past its 10 minutes is expired (deleted). */
  function live(verification: FakeVerification | undefined): FakeVerification | undefined {
    if (!verification || verification.status !== 'pending') return undefined;
    if (now().getTime() - verification.createdAt.getTime() >= TWILIO_VALIDITY_MS) {
      verification.status = 'expired';
      return undefined;
    }
    return verification;
  }

  const pendingFor = (to: string) => [...verifications.values()].find((v) => v.to === to && live(v));

  const present = (v: FakeVerification) => ({
    sid: v.sid,
    service_sid: options.serviceSid,
    account_sid: options.accountSid,
    to: v.to,
    channel: v.channel,
    status: v.status,
    valid: v.status === 'approved',
    lookup: {},
    amount: null,
    payee: null,
    send_code_attempts: v.sendAttempts,
    date_created: v.createdAt.toISOString(),
    date_updated: now().toISOString(),
    sna: null,
    url: `https://verify.twilio.com/v2/Services/${options.serviceSid}/Verifications/${v.sid}`,
  });

  function create(exchange: Exchange, form: Record<string, string>) {
    if (!form.To || !/^\+[1-9]\d{1,14}$/.test(form.To)) {
      return twilioError(exchange, 400, 60200, 'Invalid parameter: To');
    }
    if (!form.Channel || !CHANNELS.includes(form.Channel)) {
      return twilioError(exchange, 400, 60200, 'Invalid parameter: Channel');
    }
    const at = now().getTime();
    const recent = (sendsByNumber.get(form.To) ?? []).filter((time) => at - time < TWILIO_VALIDITY_MS);
    if (recent.length >= MAX_SENDS) {
      const retryAfter = Math.ceil((recent[0]! + TWILIO_VALIDITY_MS - at) / 1000);
      return twilioError(exchange, 429, 60203, 'Max send attempts reached', {
        'retry-after': String(retryAfter),
        'twilio-reached-rate-limit': 'true',
      });
    }
    sendsByNumber.set(form.To, [...recent, at]);

    let verification = pendingFor(form.To);
    if (verification) {
      // Twilio re-sends the same code while a verification is pending.
      verification.channel = form.Channel;
    } else {
      verification = {
        sid: `VE${randomBytes(16).toString('hex')}`,
        to: form.To,
        channel: form.Channel,
        code: String(randomInt(0, 10 ** codeLength)).padStart(codeLength, '0'),
        status: 'pending',
        createdAt: now(),
        checks: 0,
        sendAttempts: [],
      };
      verifications.set(verification.sid, verification);
    }
    verification.sendAttempts.push({
      time: now().toISOString(),
      channel: form.Channel.toUpperCase(),
      attempt_sid: `VL${randomBytes(16).toString('hex')}`,
    });
    sent.push({
      sid: verification.sid,
      to: verification.to,
      channel: form.Channel,
      code: verification.code,
      at: now(),
    });
    exchange.json(201, present(verification));
  }

  function check(exchange: Exchange, form: Record<string, string>) {
    if (!form.Code || form.Code.length < 4 || form.Code.length > 10) {
      return twilioError(exchange, 400, 60200, 'Invalid parameter: Code');
    }
    if (!form.VerificationSid && !form.To) {
      return twilioError(exchange, 400, 60200, 'Missing required parameter To or VerificationSid');
    }
    const found = form.VerificationSid ? verifications.get(form.VerificationSid) : pendingFor(form.To!);
    const verification = live(found);
    if (!verification || (form.To && verification.to !== form.To)) {
      return twilioError(
        exchange,
        404,
        20404,
        `The requested resource /Services/${options.serviceSid}/VerificationCheck was not found`,
      );
    }
    if (verification.checks >= MAX_CHECKS) {
      verification.status = 'max_attempts_reached';
      return twilioError(exchange, 429, 60202, 'Max check attempts reached');
    }
    verification.checks += 1;
    if (form.Code === verification.code) verification.status = 'approved';
    const { sid, to, channel, status } = verification;
    exchange.json(200, {
      sid,
      service_sid: options.serviceSid,
      account_sid: options.accountSid,
      to,
      channel,
      status,
      valid: status === 'approved',
      amount: null,
      payee: null,
      sna_attempts_error_codes: [],
      date_created: verification.createdAt.toISOString(),
      date_updated: now().toISOString(),
    });
  }

  function update(exchange: Exchange, sid: string, form: Record<string, string> | undefined) {
    const verification = live(verifications.get(sid));
    if (!verification) {
      return twilioError(
        exchange,
        404,
        20404,
        `The requested resource /Services/${options.serviceSid}/Verifications/${sid} was not found`,
      );
    }
    if (exchange.req.method === 'GET') return exchange.json(200, present(verification));
    if (form?.Status !== 'canceled' && form?.Status !== 'approved') {
      return twilioError(exchange, 400, 60200, 'Invalid parameter: Status');
    }
    verification.status = form.Status;
    exchange.json(200, present(verification));
  }

  const server = await startFakeServer(
    (exchange) => {
      const { req, log } = exchange;
      if (req.headers.authorization !== expectedAuth) {
        return twilioError(exchange, 401, 20003, 'Authenticate');
      }
      const route = /^\/v2\/Services\/([^/]+)\/(Verifications|VerificationCheck)(?:\/([^/]+))?$/.exec(
        log.path,
      );
      if (!route || decodeURIComponent(route[1]!) !== options.serviceSid) {
        return twilioError(exchange, 404, 20404, `The requested resource ${log.path} was not found`);
      }
      const [, , resource, sid] = route;
      if (req.method === 'GET' && resource === 'Verifications' && sid)
        return update(exchange, sid, undefined);
      if (req.method !== 'POST') return twilioError(exchange, 405, 20004, 'Method not allowed');
      if (!isForm(req)) return twilioError(exchange, 400, 60200, 'Invalid parameter');
      const form = (log.body ?? {}) as Record<string, string>;
      if (resource === 'VerificationCheck')
        return sid ? twilioError(exchange, 404, 20404, 'Not found') : check(exchange, form);
      return sid ? update(exchange, sid, form) : create(exchange, form);
    },
    {
      fail(exchange, mode, headers) {
        switch (mode) {
          case 400:
            return twilioError(exchange, 400, 60200, 'Invalid parameter: To');
          case 401:
            return twilioError(exchange, 401, 20003, 'Authenticate');
          case 403:
            return twilioError(exchange, 403, 60205, 'SMS is not supported by landline phone number');
          case 429:
            return twilioError(exchange, 429, 60203, 'Max send attempts reached', headers);
          default:
            return twilioError(exchange, mode, 20500, 'Internal Server Error');
        }
      },
    },
  );

  return {
    ...server,
    baseUrl: server.origin,
    sentCodes: () => sent.map((entry) => ({ ...entry })),
    lastCodeFor: (to) => sent.findLast((entry) => entry.to === to)?.code,
    verification: (sid) => {
      const found = verifications.get(sid);
      if (found) live(found);
      return found && { ...found };
    },
    setClock: clock.setClock,
  };
}
