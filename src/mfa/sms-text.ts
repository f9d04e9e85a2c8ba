import { SCOPES, type Scope } from './provider.js';

/**
 * The words of every code message. An SMS names the site and ends with the origin-bound line of
 * the WebOTP format (`@host #code`, https://wicg.github.io/sms-one-time-codes/): a browser then
 * offers the code only on that host, and a person reading "@keyhole.example" on a message that a
 * look-alike site triggered has a chance to notice.
 *
 *   Keyhole code: 123456
 *
 *   @keyhole.example #123456
 */
export interface CodeTexts {
  /** The SMS with the code written in (console, SignalWire). */
  sms(scope: Scope, code: string): string;
  /**
   * The SMS for a provider that fills the code in itself (Bandwidth's {CODE}, Kandy's {code}).
   * The placeholder appears once, on the origin-bound line: whether a second one would be filled
   * in is not documented, and a literal "{CODE}" on that line would break it.
   */
  smsTemplate(scope: Scope, placeholder: string): string;
  /** What a voice call says before it reads the digits. */
  spokenIntro(scope: Scope): string;
}

/** The longest code the site can be configured for (MFA_CODE_DIGITS). */
export const LONGEST_CODE_DIGITS = 8;
/** One GSM-7 SMS segment; a longer message is split and billed as several. */
export const GSM7_SEGMENT_LENGTH = 160;

/**
 * What a message calls its code: the scope shows, so a code is never typed where it does not belong.
 */
const SCOPE_WORDS: Record<Exclude<Scope, 'api'>, string> = {
  login: '',
  admin: 'admin ',
  enrol: 'sign-up ',
  settings: 'settings ',
  reset: 'reset ',
};
const label = (siteName: string, scope: Exclude<Scope, 'api'>) => `${siteName} ${SCOPE_WORDS[scope]}code`;

/**
 * A code of the verification API is for another application: it does not read as one of this
 * site's codes (a person taught to type "Keyhole codes" into other apps is a person easier to
 * phish for a real one), and it has no origin-bound line, since this site is not where it goes.
 * The caller's label never goes in: no caller can write its own words into a text the site sends.
 */
const apiCodeLine = (code: string) => `Your verification code: ${code}`;
const apiSender = (siteName: string) => `Sent by ${siteName} for another service. Do not share it.`;

export function createCodeTexts(options: { siteName: string; publicHost: string }): CodeTexts {
  const { siteName, publicHost } = options;
  return {
    sms: (scope, code) =>
      scope === 'api'
        ? `${apiCodeLine(code)}\n\n${apiSender(siteName)}`
        : `${label(siteName, scope)}: ${code}\n\n@${publicHost} #${code}`,
    smsTemplate: (scope, placeholder) =>
      scope === 'api'
        ? `${apiCodeLine(placeholder)}\n\n${apiSender(siteName)}`
        : `${label(siteName, scope)} (do not share it):\n\n@${publicHost} #${placeholder}`,
    spokenIntro: (scope) =>
      scope === 'api'
        ? `Your verification code, from ${siteName} for another service, is`
        : `Your ${label(siteName, scope)} is`,
  };
}

// GSM 03.38: the basic set (one septet each) and the extension set (an escape plus one septet).
const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM7_EXTENSION = '^{}\\[~]|€\f';

/** The message's length in GSM-7 septets, or null when it needs UCS-2 (and so 70 characters a segment). */
export function gsm7Length(text: string): number | null {
  let septets = 0;
  for (const character of text) {
    if (GSM7_BASIC.includes(character)) septets += 1;
    else if (GSM7_EXTENSION.includes(character)) septets += 2;
    else return null;
  }
  return septets;
}

/**
 * Why this public host cannot be used in code messages, or null: every SMS, with the longest code
 * in the longer of the two forms, must fit one GSM-7 segment.
 */
export function smsHostProblem(siteName: string, publicHost: string): string | null {
  const texts = createCodeTexts({ siteName, publicHost });
  const code = '0'.repeat(LONGEST_CODE_DIGITS);
  const longest = SCOPES.flatMap((scope) => [texts.sms(scope, code), texts.smsTemplate(scope, code)]);
  const lengths = longest.map(gsm7Length);
  if (lengths.some((length) => length === null)) {
    return 'its host must be written in plain letters, digits, dots and hyphens (punycode for other scripts)';
  }
  const over = Math.max(...(lengths as number[])) - GSM7_SEGMENT_LENGTH;
  if (over > 0) {
    return `its host is ${over} characters too long for a code to fit one text message (at most ${publicHost.length - over})`;
  }
  return null;
}
