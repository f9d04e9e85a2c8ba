import { randomUUID } from 'node:crypto';
import { basicHeader, isForm, startFakeServer } from './fake-http.js';
import type { Exchange, FailureMode, FakeControls, LoggedRequest } from './fake-http.js';

/**
 * A loopback stand-in for SignalWire's Compatibility API (https://{space}.signalwire.com/api/laml/2010-04-01),
 * following ../shared/reference/providers.md section 3. SignalWire only delivers: the fake records
 * each call (its inline cXML and Url) and message (its Body), and the site's own code store is what
 * the tests exercise. Errors use both of SignalWire's shapes: `{errors:[{code:"21211"}]}` on calls,
 * `{code:20003, status}` on auth failures and messages.
 */

export type { FailureMode, LoggedRequest };

export interface FakeSignalWireOptions {
  projectId: string;
  token: string;
  /** The number the project owns; another From gets 21210. */
  fromNumber: string;
}

export interface FakeCall {
  sid: string;
  to: string;
  from: string;
  /** The inline document (the `Twiml` or `Laml` field), if sent. */
  twiml?: string;
  url?: string;
  method?: string;
}

export interface FakeMessage {
  sid: string;
  to: string;
  from: string;
  body: string;
}

export interface FakeSignalWire extends FakeControls {
  /** http://127.0.0.1:PORT, in place of https://{space}.signalwire.com. */
  baseUrl: string;
  calls(): FakeCall[];
  messages(): FakeMessage[];
  /** The digits of the newest code sent to a number, read from the message or the spoken document. */
  lastCodeFor(to: string): string | undefined;
}

const ROUTE = /^\/api\/laml\/2010-04-01\/Accounts\/([^/]+)\/(Calls|Messages)(?:\.json)?$/;
const E164 = /^\+[1-9]\d{1,14}$/;

const moreInfo = (code: number | string) =>
  `https://developer.signalwire.com/guides/compatibility-api/error-codes#${code}`;

/** The flat shape (auth failures, messages). */
function flatError(exchange: Exchange, status: number, code: number, message: string, headers = {}) {
  exchange.json(status, { code, message, more_info: moreInfo(code), status }, headers);
}

/** The calls' 400 shape: an array, the code a string. */
function listError(exchange: Exchange, status: number, code: string, message: string) {
  exchange.json(status, { errors: [{ code, message, more_info: moreInfo(code), status }] });
}

/** "4, 8, 1, 5, 9, 2" read from a cXML <Say>, or a plain run of digits in an SMS. */
export function digitsIn(text: string): string | undefined {
  const spoken = text.match(/(\d(?:, \d){3,9})/);
  if (spoken) return spoken[1]!.replace(/, /g, '');
  return text.match(/\b(\d{4,10})\b/)?.[1];
}

export async function startFakeSignalWire(options: FakeSignalWireOptions): Promise<FakeSignalWire> {
  const expectedAuth = basicHeader(options.projectId, options.token);
  const calls: FakeCall[] = [];
  const messages: FakeMessage[] = [];
  const deliveries: { to: string; code: string | undefined }[] = [];

  function createCall(exchange: Exchange, form: Record<string, string>) {
    if (!form.To || !E164.test(form.To))
      return listError(exchange, 400, '21211', "Invalid 'To' Phone Number");
    if (!form.From) return listError(exchange, 400, '21213', "'From' phone number is required");
    if (!E164.test(form.From)) return listError(exchange, 400, '21212', "Invalid 'From' Phone Number");
    if (form.From !== options.fromNumber) {
      return listError(exchange, 400, '21210', "'From' phone number not verified");
    }
    const twiml = form.Twiml ?? form.Laml;
    if (!form.Url && !form.ApplicationSid && !twiml) {
      return listError(exchange, 400, '21205', 'Url parameter is required');
    }
    if (twiml !== undefined && (twiml.length < 11 || twiml.length > 4000 || !/<Response>/.test(twiml))) {
      return listError(exchange, 400, '12100', 'Document parse failure');
    }
    const call: FakeCall = {
      sid: randomUUID(),
      to: form.To,
      from: form.From,
      twiml,
      url: form.Url,
      method: form.Method,
    };
    calls.push(call);
    deliveries.push({ to: call.to, code: twiml ? digitsIn(twiml) : undefined });
    exchange.json(200, {
      sid: call.sid,
      account_sid: options.projectId,
      to: call.to,
      from: call.from,
      status: 'queued',
      direction: 'outbound-api',
      api_version: '2010-04-01',
      date_created: new Date().toUTCString(),
      uri: `/api/laml/2010-04-01/Accounts/${options.projectId}/Calls/${call.sid}.json`,
    });
  }

  function createMessage(exchange: Exchange, form: Record<string, string>) {
    if (!form.To || !E164.test(form.To)) return flatError(exchange, 400, 21211, "Invalid 'To' Phone Number");
    if (!form.From && !form.MessagingServiceSid) {
      return flatError(exchange, 400, 21213, "'From' phone number is required");
    }
    if (form.From !== undefined && form.From !== options.fromNumber) {
      return flatError(exchange, 400, 21210, "'From' phone number not verified");
    }
    if (!form.Body && !form.MediaUrl) return flatError(exchange, 400, 21602, 'Message body is required');
    const message: FakeMessage = {
      sid: randomUUID(),
      to: form.To,
      from: form.From ?? '',
      body: form.Body ?? '',
    };
    messages.push(message);
    deliveries.push({ to: message.to, code: digitsIn(message.body) });
    exchange.json(201, {
      sid: message.sid,
      account_sid: options.projectId,
      to: message.to,
      from: message.from,
      body: message.body,
      status: 'queued',
      num_segments: '1',
      error_code: null,
      error_message: null,
    });
  }

  const server = await startFakeServer(
    (exchange) => {
      const { req, log } = exchange;
      if (req.headers.authorization !== expectedAuth)
        return flatError(exchange, 401, 20003, 'Authentication failed');
      const route = ROUTE.exec(log.path);
      if (!route || req.method !== 'POST')
        return flatError(exchange, 404, 20404, 'The requested resource was not found');
      if (decodeURIComponent(route[1]!) !== options.projectId) {
        return flatError(exchange, 401, 20003, 'Authentication failed');
      }
      if (!isForm(req)) return flatError(exchange, 400, 21211, 'Invalid request body');
      const form = (log.body ?? {}) as Record<string, string>;
      return route[2] === 'Calls' ? createCall(exchange, form) : createMessage(exchange, form);
    },
    {
      fail(exchange, mode, headers) {
        switch (mode) {
          case 400:
            return listError(exchange, 400, '21211', "Invalid 'To' Phone Number");
          case 401:
            return flatError(exchange, 401, 20003, 'Authentication failed');
          case 403:
            return flatError(exchange, 403, 20003, 'Forbidden');
          case 429:
            return flatError(exchange, 429, 20429, 'Too Many Requests', headers);
          default:
            return flatError(exchange, mode, 20500, 'Internal Server Error');
        }
      },
    },
  );

  return {
    ...server,
    baseUrl: server.origin,
    calls: () => calls.map((call) => ({ ...call })),
    messages: () => messages.map((message) => ({ ...message })),
    lastCodeFor: (to) => deliveries.findLast((delivery) => delivery.to === to)?.code,
  };
}
