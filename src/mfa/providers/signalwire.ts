import type { SignalWireConfig } from './config.js';
import type { CodeStore } from '../code-store.js';
import { ProviderError } from '../provider.js';
import type { MfaProvider } from '../provider.js';
import type { CodeTexts } from '../sms-text.js';
import { basicAuth, callProvider, isRecord, retryAfterSeconds, safeCode, unexpectedBody } from './http.js';
import type { HttpAnswer } from './http.js';
import { SIGNALWIRE_VOICE_PATH, type VoiceDocumentStore } from './signalwire-voice-route.js';

export interface SignalWireProviderOptions {
  config: SignalWireConfig;
  /** The app's own code store: SignalWire only delivers, the site makes and checks the codes. */
  codes: CodeStore;
  /** Where a call's spoken document waits for SignalWire to fetch it (the Url fallback). */
  voiceDocuments: VoiceDocumentStore;
  codeDigits: number;
  codeTtlMinutes: number;
  /** Hard deadline for one HTTP call. */
  timeoutMs?: number;
  texts: CodeTexts;
}

const NAME = 'signalwire';
const API_PATH = '/api/laml/2010-04-01';

// 21211/21217: To missing or not valid; 21219: trial account and To not verified; 21614: To cannot receive SMS.
const NUMBER_CODES = new Set([21211, 21217, 21219, 21614]);
// 21205: no Url; 21210: From not owned; 21212/21213: From not E.164 or missing; 12100: cXML did not parse.
const CONFIGURATION_CODES = new Set([20003, 21205, 21210, 21212, 21213, 12100]);

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** The cXML of a code call: its intro ("Your Keyhole code is"), the digits one at a time ("4, 8, 1, ..."), twice, with pauses. */
export function composeVoiceDocument(intro: string, code: string): string {
  const spoken = code.split('').join(', ');
  const say = (text: string) => `<Say language="en-US">${escapeXml(text)}</Say>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?><Response>' +
    say(intro) +
    '<Pause length="1"/>' +
    say(`${spoken}.`) +
    '<Pause length="2"/>' +
    say(`Again: ${spoken}.`) +
    '<Pause length="1"/>' +
    say('Goodbye.') +
    '</Response>'
  );
}

/** Both of SignalWire's error shapes: `{code, message, status}` and `{errors: [{code: "21211", ...}]}`. */
function signalWireCode(answer: HttpAnswer): number | undefined {
  const body = answer.json;
  if (!isRecord(body)) return undefined;
  const first = Array.isArray(body.errors) && isRecord(body.errors[0]) ? body.errors[0].code : body.code;
  if (typeof first === 'number') return first;
  return typeof first === 'string' && /^\d{1,8}$/.test(first) ? Number(first) : undefined;
}

function toProviderError(answer: HttpAnswer, action: string): ProviderError {
  const { status } = answer;
  const code = signalWireCode(answer);
  const detail = `${action}: HTTP ${status}${code !== undefined ? ` (SignalWire ${safeCode(code)})` : ''}`;
  if (status === 401 || code === 20003) return new ProviderError('auth', NAME, detail);
  if (status === 429 || code === 20429) {
    return new ProviderError('rate_limited', NAME, detail, {
      retryAfterSeconds: retryAfterSeconds(answer.headers),
    });
  }
  if (code !== undefined && NUMBER_CODES.has(code)) return new ProviderError('invalid_number', NAME, detail);
  // A wrong project or space (403/404), or a request the site builds from its settings being refused.
  if (status === 403 || status === 404 || (code !== undefined && CONFIGURATION_CODES.has(code))) {
    return new ProviderError('auth', NAME, detail);
  }
  if (status === 400 || status === 422) return new ProviderError('invalid_number', NAME, detail);
  return new ProviderError('unavailable', NAME, detail);
}

/**
 * SignalWire's Compatibility API places the call or sends the SMS; the code is made, hashed,
 * scoped, expired and burnt by the app's code store, as with the console provider.
 */
export function createSignalWireProvider(options: SignalWireProviderOptions): MfaProvider {
  const { config, codes, voiceDocuments, codeDigits, codeTtlMinutes, timeoutMs = 10_000 } = options;
  const authorization = basicAuth(config.projectId, config.token);
  const accountUrl = `${config.baseUrl}${API_PATH}/Accounts/${encodeURIComponent(config.projectId)}`;

  async function post(action: string, resource: 'Calls' | 'Messages', form: Record<string, string>) {
    const answer = await callProvider({
      provider: NAME,
      action,
      method: 'POST',
      url: `${accountUrl}/${resource}`,
      headers: { Authorization: authorization },
      body: new URLSearchParams(form),
      timeoutMs,
    });
    if (answer.status < 200 || answer.status >= 300) throw toProviderError(answer, action);
    // Both resources answer with the created object; without its sid we cannot tell what happened.
    if (!isRecord(answer.json) || typeof answer.json.sid !== 'string') {
      throw unexpectedBody(NAME, action, answer.status);
    }
  }

  return {
    name: NAME,
    channels: ['sms', 'voice'],

    async send({ to, channel, scope }) {
      const issued = await codes.issue({ to, scope, digits: codeDigits, ttlMs: codeTtlMinutes * 60_000 });
      try {
        if (channel === 'sms') {
          await post('send sms code', 'Messages', {
            To: to,
            From: config.fromNumber,
            Body: options.texts.sms(scope, issued.code),
          });
        } else {
          const xml = composeVoiceDocument(options.texts.spokenIntro(scope), issued.code);
          const documentId = await voiceDocuments.put({
            xml,
            codeId: issued.id,
            expiresAt: issued.expiresAt,
          });
          await post('send voice code', 'Calls', {
            To: to,
            From: config.fromNumber,
            // Inline first; the Url is the fallback for accounts that ignore the inline document.
            // It names only a one-time id: the code itself never appears in a URL.
            Twiml: xml,
            Url: `${config.callbackBaseUrl}${SIGNALWIRE_VOICE_PATH}/${documentId}`,
            Method: 'POST',
          });
        }
      } catch (error) {
        // A code that may not have gone out is never left valid; the person asks for a new one.
        // If the store cannot void it, the provider's failure is still what the person is told.
        await codes.void(issued.id).catch(() => undefined);
        // The code is void already: a document the store could not drop now opens nothing, and expires with it.
        await voiceDocuments.dropForCode(issued.id).catch(() => undefined);
        throw error;
      }
      return { handle: issued.id };
    },

    async verify({ to, scope, code, handle }) {
      if (!handle) return 'invalid';
      return codes.check({ id: handle, to, scope, code });
    },

    async cancel({ handle }) {
      if (!handle) return;
      await codes.void(handle);
      await voiceDocuments.dropForCode(handle);
    },
  };
}
